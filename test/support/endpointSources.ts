/**
 * Where the integration suite gets a real PostgreSQL and Kafka, in order of preference:
 *   1. env: PG_URL + KAFKA_BROKERS (a stack someone already runs, e.g. `npm run stack:up`)
 *   2. testcontainers, when a Docker engine answers
 *   3. the local stack: this machine's PostgreSQL (through its superuser) and a throw-away broker
 *      started from Maven Central jars
 * Each source returns null with a reason when it does not apply, so the banner can say why.
 */
import { startLocalKafka, waitForBroker, warmUpBroker } from "../../scripts/stack/kafkaBroker.ts"
import { dockerEngineAvailable } from "../../scripts/stack/docker.ts"
import { findFreePorts } from "../../scripts/stack/ports.ts"
import { ensureLocalPostgres, localPostgresProblem } from "../../scripts/stack/postgres.ts"
import { missingLocalKafkaTools } from "../../scripts/stack/tools.ts"
import { KAFKA_VERSION, kafkaJarsReady } from "../../scripts/stack/kafkaJars.ts"
import type { Endpoints } from "./endpointsContext.ts"

/** Tests get their own database on a shared server, so they never touch food_delivery_db. */
export const TEST_DATABASE = "food_delivery_test"

export interface Resolved {
  readonly endpoints: Endpoints
  /** A line for the log: what exactly the tests run against. */
  readonly detail: string
  readonly teardown: () => Promise<void>
}

export type Attempt = { readonly resolved: Resolved } | { readonly skipped: string }

export const fromEnv = (): Attempt => {
  const pgUrl = process.env["PG_URL"]
  const kafkaBrokers = process.env["KAFKA_BROKERS"]
  if (!pgUrl || !kafkaBrokers) return { skipped: "PG_URL and KAFKA_BROKERS are not both set" }
  const kafkaVersion = process.env["KAFKA_VERSION"]
  return {
    resolved: {
      endpoints: { pgUrl, kafkaBrokers, source: "env", ...(kafkaVersion ? { kafkaVersion } : {}) },
      detail: `PG_URL=${pgUrl.replace(/:[^:@/]*@/, ":***@")} KAFKA_BROKERS=${kafkaBrokers}`,
      teardown: async () => undefined
    }
  }
}

/**
 * @testcontainers/kafka 11's KafkaContainer drives Confluent images only (it runs
 * /etc/confluent/docker/run), so apache/kafka runs as a GenericContainer configured like
 * docker-compose.yml. The advertised port must equal the host port, so it is chosen up front.
 */
export const fromTestcontainers = async (): Promise<Attempt> => {
  if (!(await dockerEngineAvailable())) return { skipped: "no Docker engine answers (`docker info` fails)" }
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import("testcontainers")
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql")

  const postgres = await new PostgreSqlContainer("postgres:15")
    .withDatabase(TEST_DATABASE)
    .withUsername("student")
    .withPassword("student123")
    .start()
  try {
    const host = (await getContainerRuntimeClient()).info.containerRuntime.host
    const [port] = await findFreePorts(1)
    const kafka = await new GenericContainer(`apache/kafka:${KAFKA_VERSION}`)
      .withExposedPorts({ container: port!, host: port! })
      .withEnvironment({
        KAFKA_NODE_ID: "1",
        KAFKA_PROCESS_ROLES: "broker,controller",
        KAFKA_LISTENERS: `EXTERNAL://0.0.0.0:${port},PLAINTEXT://0.0.0.0:29092,CONTROLLER://0.0.0.0:9093`,
        KAFKA_ADVERTISED_LISTENERS: `EXTERNAL://${host}:${port},PLAINTEXT://localhost:29092`,
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
        KAFKA_INTER_BROKER_LISTENER_NAME: "PLAINTEXT",
        KAFKA_CONTROLLER_LISTENER_NAMES: "CONTROLLER",
        KAFKA_CONTROLLER_QUORUM_VOTERS: "1@localhost:9093",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: "1",
        KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: "1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: "1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: "1",
        KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS: "1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: "0",
        KAFKA_NUM_PARTITIONS: "1"
      })
      .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
      .withStartupTimeout(120_000)
      .start()
    const kafkaBrokers = `${host}:${port}`
    await waitForBroker(kafkaBrokers, { timeoutMs: 60_000 })
    await warmUpBroker(kafkaBrokers)
    return {
      resolved: {
        endpoints: { pgUrl: postgres.getConnectionUri(), kafkaBrokers, source: "testcontainers", kafkaVersion: KAFKA_VERSION },
        detail: `postgres:15 container ${postgres.getId().slice(0, 12)}, apache/kafka:${KAFKA_VERSION} container ${kafka.getId().slice(0, 12)} at ${kafkaBrokers}`,
        teardown: async () => {
          await Promise.allSettled([kafka.stop(), postgres.stop()])
        }
      }
    }
  } catch (error) {
    await postgres.stop().catch(() => undefined)
    throw error
  }
}

export const fromLocalStack = async (): Promise<Attempt> => {
  const missing = missingLocalKafkaTools({ needMaven: !kafkaJarsReady() })
  if (missing.length > 0) return { skipped: `a local Kafka broker needs: ${missing.join("; ")}` }
  const pgProblem = await localPostgresProblem()
  if (pgProblem !== null) return { skipped: pgProblem }

  const pg = await ensureLocalPostgres({ database: TEST_DATABASE })
  const kafka = await startLocalKafka()
  return {
    resolved: {
      endpoints: { pgUrl: pg.pgUrl, kafkaBrokers: kafka.brokers, source: "local-stack", kafkaVersion: kafka.kafkaVersion },
      detail: `database ${pg.database} as ${pg.role}; Kafka ${kafka.kafkaVersion} broker pid ${kafka.pid} at ${kafka.brokers} (data ${kafka.dir})`,
      teardown: () => kafka.stop()
    }
  }
}
