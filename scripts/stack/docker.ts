import { StackError } from "./log.ts"
import { repoRoot } from "./paths.ts"
import { commandExists, run, runVisible } from "./proc.ts"

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
 * Starts the services the pipeline needs (PostgreSQL, Kafka) and waits for their healthchecks; the
 * producer and consumer services of docker-compose.yml are for `docker compose up`, not the stack.
 */
export const composeUp = (): Promise<number | null> => compose(["up", "-d", "--wait", "postgres", "kafka"])

/** Stops and removes the containers; named volumes (the database, the topic) are kept. */
export const composeDown = (): Promise<number | null> => compose(["down"])

/** Host-side endpoints of docker-compose.yml (same variables and defaults as the file). */
export const composeEndpoints = (): Record<string, string> => {
  const password = process.env["POSTGRES_PASSWORD"] || "student123"
  const pgPort = process.env["POSTGRES_PORT"] || "5432"
  const kafkaPort = process.env["KAFKA_PORT"] || "9092"
  return {
    PG_URL: `postgres://student:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/food_delivery_db`,
    KAFKA_BROKERS: `localhost:${kafkaPort}`
  }
}
