/**
 * Where the benchmark runs: PG_URL + KAFKA_BROKERS from the environment when both are set (a stack
 * someone already runs), otherwise this machine's PostgreSQL (database food_delivery_bench, created
 * if missing) and a throw-away Kafka broker on free ports, stopped at the end.
 */
import { execFileSync } from "node:child_process"
import { cpus, loadavg, release, totalmem } from "node:os"
import pg from "pg"
import { startLocalKafka } from "../scripts/stack/kafkaBroker.ts"
import { KAFKA_VERSION } from "../scripts/stack/kafkaJars.ts"
import { repoRoot } from "../scripts/stack/paths.ts"
import { ensureLocalPostgres } from "../scripts/stack/postgres.ts"
import { commandExists } from "../scripts/stack/proc.ts"
import { onCleanup } from "./cleanup.ts"

export const BENCH_DATABASE = "food_delivery_bench"

export interface Stack {
  readonly source: "env" | "local"
  readonly pgUrl: string
  readonly kafkaBrokers: string
  readonly kafkaVersion: string
  /** The broker's pid when we started it (its CPU is sampled). */
  readonly brokerPid: number | null
}

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

export const redactUrl = (url: string): string => url.replace(/:[^:@/]*@/, ":***@")

export const resolveStack = async (): Promise<Stack> => {
  const pgUrl = process.env["PG_URL"]
  const kafkaBrokers = process.env["KAFKA_BROKERS"]
  if (pgUrl && kafkaBrokers) {
    say(`using PG_URL=${redactUrl(pgUrl)} and KAFKA_BROKERS=${kafkaBrokers} from the environment`)
    return { source: "env", pgUrl, kafkaBrokers, kafkaVersion: process.env["KAFKA_VERSION"] || "unknown (from KAFKA_BROKERS)", brokerPid: null }
  }
  say(`local stack: PostgreSQL database ${BENCH_DATABASE} and a throw-away Kafka ${KAFKA_VERSION} broker`)
  const postgres = await ensureLocalPostgres({ database: BENCH_DATABASE, applyDbScripts: false })
  const started = Date.now()
  const kafka = await startLocalKafka()
  onCleanup(`stop the Kafka broker (pid ${kafka.pid})`, () => kafka.stop())
  say(`broker pid ${kafka.pid} at ${kafka.brokers} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return { source: "local", pgUrl: postgres.pgUrl, kafkaBrokers: kafka.brokers, kafkaVersion: kafka.kafkaVersion, brokerPid: kafka.pid }
}

const quiet = (command: string, args: ReadonlyArray<string>): string | null => {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], cwd: repoRoot }).trim()
  } catch {
    return null
  }
}

export interface MachineFacts {
  readonly cores: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly kernel: string
  readonly node: string
  readonly kafka: string
  readonly postgres: string
  readonly kcat: string | null
  readonly gitCommit: string | null
  readonly gitDirty: boolean | null
  readonly loadAverageAtStart: ReadonlyArray<number>
}

export const kcatVersion = (): string | null => {
  if (!commandExists("kcat")) return null
  const text = quiet("kcat", ["-V"]) ?? ""
  const kcat = /Version ([\d.]+)/.exec(text)?.[1]
  const librdkafka = /librdkafka ([\d.]+)/.exec(text)?.[1]
  return kcat === undefined ? "unknown" : `${kcat} (librdkafka ${librdkafka ?? "?"})`
}

/** The commit (and whether tracked files differ from it) the code under test is at right now. */
export const codeVersion = (): string => {
  const commit = quiet("git", ["rev-parse", "--short", "HEAD"]) ?? "?"
  const status = quiet("git", ["status", "--porcelain", "--untracked-files=no"])
  return status === null || status.length === 0 ? commit : `${commit}+modified`
}

export const machineFacts = async (stack: Stack): Promise<MachineFacts> => {
  const client = new pg.Client({ connectionString: stack.pgUrl })
  let postgres = "unknown"
  try {
    await client.connect()
    postgres = String((await client.query("SHOW server_version")).rows[0]?.server_version ?? "unknown")
  } finally {
    await client.end().catch(() => undefined)
  }
  const status = quiet("git", ["status", "--porcelain", "--untracked-files=no"])
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    kafka: stack.kafkaVersion,
    postgres,
    kcat: kcatVersion(),
    gitCommit: quiet("git", ["rev-parse", "--short", "HEAD"]),
    gitDirty: status === null ? null : status.length > 0,
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100)
  }
}
