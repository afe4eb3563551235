import { StackError } from "./log.ts"
import { repoRoot } from "./paths.ts"
import { commandExists, run, runVisible } from "./proc.ts"
import { s3EnvOf, STACK_S3 } from "./s3Server.ts"

/** A docker client alone is not enough (these machines have one without an engine): `docker info` must succeed. */
export const dockerEngineAvailable = async (): Promise<boolean> =>
  commandExists("docker") && (await run("docker", ["info"], { timeoutMs: 15_000 })).code === 0

/**
 * Compose v2 (`docker compose`) only: `up --wait` and the top-level `name:` of docker-compose.yml
 * do not exist in the old Python docker-compose 1.x.
 */
const compose = async (args: ReadonlyArray<string>): Promise<number | null> => {
  if ((await run("docker", ["compose", "version"], { timeoutMs: 15_000 })).code !== 0) {
    throw new StackError("`docker compose` (Compose v2) is not installed; install the docker-compose-plugin package")
  }
  return runVisible("docker", ["compose", ...args], { cwd: repoRoot })
}

/**
 * Starts the services the pipeline needs (PostgreSQL, Kafka, MinIO) and waits for their
 * healthchecks, then creates the lake's bucket with the one-shot minio-init (run apart: `up --wait`
 * treats a container that has exited as a failure in some Compose versions). The producer and
 * consumer services of docker-compose.yml are for `docker compose up`, not the stack.
 */
export const composeUp = async (): Promise<number | null> => {
  const code = await compose(["up", "-d", "--wait", "postgres", "kafka", "minio"])
  return code !== 0 ? code : compose(["run", "--rm", "minio-init"])
}

/** Stops and removes the containers; named volumes (the database, the topic) are kept. */
export const composeDown = (): Promise<number | null> => compose(["down"])

/** Host-side endpoints of docker-compose.yml (same variables and defaults as the file). */
export const composeEndpoints = (): Record<string, string> => {
  const password = process.env["POSTGRES_PASSWORD"] || "student123"
  const pgPort = process.env["POSTGRES_PORT"] || "5432"
  const kafkaPort = process.env["KAFKA_PORT"] || "9092"
  return {
    PG_URL: `postgres://student:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/food_delivery_db`,
    KAFKA_BROKERS: `localhost:${kafkaPort}`,
    // docker-compose.yml's MinIO: the same keys, region and bucket as the local stack's S3Proxy.
    ...s3EnvOf({
      ...STACK_S3,
      endpoint: `http://127.0.0.1:${process.env["MINIO_PORT"] || "9000"}`,
      accessKeyId: process.env["MINIO_ROOT_USER"] || STACK_S3.accessKeyId,
      secretAccessKey: process.env["MINIO_ROOT_PASSWORD"] || STACK_S3.secretAccessKey
    })
  }
}

/**
 * docker-compose.yml starts PostgreSQL with wal_level=logical, and its student is the image's
 * superuser (so REPLICATION too). Read back from the container, in case an older one still runs.
 */
export const composeCaptureMode = async (): Promise<"logical" | "poll"> => {
  const shown = await run(
    "docker",
    ["compose", "exec", "-T", "postgres", "psql", "-U", "student", "-d", "food_delivery_db", "-Atc", "SHOW wal_level"],
    { cwd: repoRoot, timeoutMs: 30_000 }
  )
  return shown.code === 0 && shown.stdout.trim() !== "logical" ? "poll" : "logical"
}
