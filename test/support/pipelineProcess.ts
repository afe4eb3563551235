import { execFile } from "node:child_process"
import { join } from "node:path"
import { repoRoot } from "../../scripts/stack/paths.ts"

export interface PipelineEnv {
  readonly pgUrl: string
  readonly kafkaBrokers: string
  readonly roll: string
  readonly stateDir: string
  readonly extra?: Readonly<Record<string, string>>
}

/** The environment overrides that point the programs at a test's own table, topic, lake and state. */
export const pipelineEnv = (env: PipelineEnv): Record<string, string> => ({
  PG_URL: env.pgUrl,
  KAFKA_BROKERS: env.kafkaBrokers,
  POSTGRES_TABLE: `${env.roll}_orders`,
  KAFKA_TOPIC: `${env.roll}_food_orders_raw`,
  DATALAKE_PATH: join(env.stateDir, "output/orders"),
  STREAMING_CHECKPOINT_LOCATION: join(env.stateDir, "checkpoints/orders"),
  STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION: join(env.stateDir, "lastprocess/orders"),
  ...env.extra
})

export interface ProgramRun {
  readonly code: number
  /** The signal that ended the process (SIGKILL from a crash point), or null. */
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Runs `src/bin/<program>.ts` as its own Node process, as `npm run <program> -- args` would. */
export const runProgram = (program: "producer" | "consumer", args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<ProgramRun>((resolve) => {
    const started = Date.now()
    execFile(
      process.execPath,
      ["--import", "tsx", join(repoRoot, "src/bin", `${program}.ts`), ...args],
      { cwd: repoRoot, env: { ...process.env, ...env, LOG_FORMAT: "json" }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        const signal = error === null ? null : error.signal ?? null
        resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
      }
    )
  })

/** The JSON log lines a program printed, parsed. */
export const logLines = (run: ProgramRun): Array<Record<string, unknown>> =>
  run.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)
