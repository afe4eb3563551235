/**
 * The development stack: PostgreSQL + Apache Kafka (KRaft) + an S3-compatible server for the lake.
 *
 *   tsx scripts/stack.ts up      start (or reuse) everything; prints KEY=value endpoints on stdout
 *   tsx scripts/stack.ts down    stop what `up` started (keeps the database and topic data)
 *   tsx scripts/stack.ts status  what runs; prints the endpoints and exits 0 when everything answers
 *   tsx scripts/stack.ts fetch   download the jars only (CI does this as a visible step): the Kafka
 *                                broker's, S3Proxy's, and Spark + Delta's for the tests that read the table with Spark
 *
 * With a Docker engine it drives docker-compose.yml (MinIO for S3). Without one it uses the machine's
 * PostgreSQL (through the superuser; it sets wal_level = logical, restarting the cluster once if it
 * can) and runs a Kafka broker and S3Proxy from Maven Central jars. STACK_MODE=docker|local
 * forces a mode. CAPTURE_MODE=logical is printed when the server can serve logical capture. Progress goes to stderr; stdout carries only the endpoints, also saved to
 * <cache>/stack/endpoints.env.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { composeCaptureMode, composeDown, composeEndpoints, composeUp, dockerEngineAvailable } from "./stack/docker.ts"
import { ensureKafkaJars, KAFKA_VERSION } from "./stack/kafkaJars.ts"
import { describeStackBrokers, ensureStackBroker, stackBrokerProblem, stopStackBrokers } from "./stack/localStack.ts"
import { StackError, say } from "./stack/log.ts"
import { currentWalLevel, ensureLogicalWal } from "./stack/logicalWal.ts"
import { describeStackS3, ensureS3ProxyJar, ensureStackS3, S3PROXY_VERSION, s3EnvOf, stopStackS3 } from "./stack/s3Server.ts"
import { endpointsFile } from "./stack/paths.ts"
import { ensureLocalPostgres, localPostgresProblem } from "./stack/postgres.ts"
import { DELTA_VERSION, ensureSparkJars, SPARK_VERSION } from "./stack/sparkJars.ts"

type Mode = "docker" | "local"

const chooseMode = async (): Promise<Mode> => {
  const forced = process.env["STACK_MODE"]
  if (forced === "docker" || forced === "local") return forced
  if (forced) throw new StackError(`STACK_MODE must be docker or local, not ${JSON.stringify(forced)}`)
  return (await dockerEngineAvailable()) ? "docker" : "local"
}

const publish = (endpoints: Record<string, string>): void => {
  const text = Object.entries(endpoints).map(([key, value]) => `${key}=${value}\n`).join("")
  const file = endpointsFile()
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
  process.stdout.write(text)
  say(`endpoints saved to ${file} (source it: set -a; . ${file}; set +a)`)
}

const up = async (): Promise<void> => {
  const started = Date.now()
  const mode = await chooseMode()
  if (mode === "docker") {
    say("Docker engine found: docker compose up -d --wait")
    const code = await composeUp()
    if (code !== 0) throw new StackError(`docker compose up failed (exit ${code})`)
    publish({ ...composeEndpoints(), CAPTURE_MODE: await composeCaptureMode(), KAFKA_VERSION, STACK_MODE: mode })
  } else {
    say("no Docker engine answers: using the local PostgreSQL, and a Kafka broker and S3Proxy from Maven Central jars")
    const problem = stackBrokerProblem()
    if (problem !== null) throw new StackError(problem)
    const pg = await ensureLocalPostgres()
    const wal = await ensureLogicalWal()
    if (!wal.logical) {
      say(`WARNING: wal_level is ${wal.walLevel}, so capture stays in poll mode (inserts only; no updates or deletes). ${wal.advice ?? ""}`)
      say("then run `npm run stack:up` again to get CAPTURE_MODE=logical")
    }
    const kafka = await ensureStackBroker()
    const s3 = await ensureStackS3()
    publish({
      PG_URL: pg.pgUrl,
      CAPTURE_MODE: wal.logical ? "logical" : "poll",
      KAFKA_BROKERS: kafka.brokers,
      KAFKA_VERSION,
      ...s3EnvOf(s3),
      STACK_MODE: mode,
      KAFKA_LOG: kafka.logFile,
      S3PROXY_LOG: s3.logFile
    })
  }
  say(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

const down = async (): Promise<void> => {
  for (const line of await stopStackBrokers()) say(line)
  const s3Line = await stopStackS3()
  if (s3Line !== null) say(s3Line)
  if (process.env["STACK_MODE"] !== "local" && (await dockerEngineAvailable())) {
    const code = await composeDown()
    if (code !== 0) throw new StackError(`docker compose down failed (exit ${code})`)
  }
  rmSync(endpointsFile(), { force: true })
  say("stack down (the database, the Kafka data directories and the S3 objects are kept)")
}

const status = async (): Promise<number> => {
  const mode = await chooseMode()
  say(`mode: ${mode}`)
  if (mode === "docker") {
    say("docker mode: see `docker compose ps`")
    return 0
  }
  const { lines, healthy } = await describeStackBrokers()
  for (const line of lines) say(line)
  const s3 = await describeStackS3()
  say(s3.line)
  const pgProblem = await localPostgresProblem()
  say(pgProblem === null ? `PostgreSQL: reachable, wal_level ${await currentWalLevel() ?? "unknown"}` : `PostgreSQL: ${pgProblem}`)
  if (healthy === null || pgProblem !== null || !s3.healthy) return 1
  try {
    process.stdout.write(readFileSync(endpointsFile(), "utf8"))
  } catch {
    say("no endpoints.env; run `npm run stack:up`")
    return 1
  }
  return 0
}

const fetchJars = async (): Promise<void> => {
  const libDir = await ensureKafkaJars()
  process.stdout.write(`KAFKA_LIB=${libDir}\nKAFKA_VERSION=${KAFKA_VERSION}\n`)
  const s3ProxyJar = await ensureS3ProxyJar()
  process.stdout.write(`S3PROXY_JAR=${s3ProxyJar}\nS3PROXY_VERSION=${S3PROXY_VERSION}\n`)
  const sparkJars = await ensureSparkJars()
  process.stdout.write(`SPARK_JARS=${sparkJars}\nSPARK_VERSION=${SPARK_VERSION}\nDELTA_VERSION=${DELTA_VERSION}\n`)
}

const main = async (command: string | undefined): Promise<number> => {
  switch (command) {
    case "up":
      await up()
      return 0
    case "down":
      await down()
      return 0
    case "status":
      return status()
    case "fetch":
      await fetchJars()
      return 0
    default:
      process.stderr.write("usage: tsx scripts/stack.ts up | down | status | fetch\n")
      return 2
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (error: unknown) => {
    say(error instanceof StackError ? `ERROR: ${error.message}` : `ERROR: ${error instanceof Error ? error.stack : String(error)}`)
    process.exit(1)
  }
)
