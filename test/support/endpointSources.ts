/**
 * Where the integration suite gets a real PostgreSQL and Kafka, in order of preference:
 *   1. env: PG_URL + KAFKA_BROKERS (a stack someone already runs, e.g. `npm run stack:up`)
 *   2. testcontainers, when a Docker engine answers
 *   3. the local stack: this machine's PostgreSQL (through its superuser) and a throw-away broker
 *      started from Maven Central jars
 * Each source returns null with a reason when it does not apply, so the banner can say why.
 *
 * The S3 server follows its source: AWS_ENDPOINT_URL_S3 + LAKE_BUCKET from the environment, MinIO
 * with testcontainers, S3Proxy (Maven Central jar) with the local stack. When the environment names
 * no S3 server, a throw-away S3Proxy is started if Java can run one; else `s3` is null (`s3Problem`
 * says why, and globalSetup fails the run on it under CI).
 */
import { startLocalKafka, waitForBroker, warmUpBroker } from "../../scripts/stack/kafkaBroker.ts"
import { dockerEngineAvailable } from "../../scripts/stack/docker.ts"
import { findFreePorts } from "../../scripts/stack/ports.ts"
import { ensureLocalPostgres, localPostgresProblem } from "../../scripts/stack/postgres.ts"
import { missingLocalKafkaTools } from "../../scripts/stack/tools.ts"
import { KAFKA_VERSION, kafkaJarsReady } from "../../scripts/stack/kafkaJars.ts"
import { s3ProxyJarReady, startLocalS3 } from "../../scripts/stack/s3Server.ts"
import { commandExists } from "../../scripts/stack/proc.ts"
import { javaCommand, mavenCommand } from "../../scripts/stack/tools.ts"
import type { Endpoints, S3Endpoints } from "./endpointsContext.ts"

/** Tests get their own database on a shared server, so they never touch food_delivery_db. */
export const TEST_DATABASE = "food_delivery_test"

export interface Resolved {
  readonly endpoints: Endpoints
  /** Why `endpoints.s3` is null; globalSetup fails the run on it under CI. */
  readonly s3Problem?: string
  /** A line for the log: what exactly the tests run against. */
  readonly detail: string
  readonly teardown: () => Promise<void>
}

export type Attempt = { readonly resolved: Resolved } | { readonly skipped: string }

interface S3Found {
  readonly s3: S3Endpoints | null
  readonly detail: string
  readonly problem?: string
  readonly teardown: () => Promise<void>
}

/** AWS_ENDPOINT_URL_S3 + LAKE_BUCKET (+ the AWS_* keys), as `npm run stack:up` prints them. */
export const s3FromEnv = (): S3Endpoints | null => {
  const endpoint = process.env["AWS_ENDPOINT_URL_S3"] || process.env["AWS_ENDPOINT_URL"]
  const bucket = process.env["LAKE_BUCKET"]
  const accessKeyId = process.env["AWS_ACCESS_KEY_ID"]
  const secretAccessKey = process.env["AWS_SECRET_ACCESS_KEY"]
  if (!endpoint || !bucket || !accessKeyId || !secretAccessKey) return null
  return { endpoint, bucket, accessKeyId, secretAccessKey, region: process.env["AWS_REGION"] || "us-east-1" }
}

/** Why a throw-away S3Proxy cannot run here, or null. */
export const localS3Problem = (): string | null => {
  if (!commandExists(javaCommand())) return "S3Proxy needs java 17+"
  if (!s3ProxyJarReady() && !commandExists(mavenCommand())) return "S3Proxy's jar is not cached and mvn is missing to fetch it"
  return null
}

/** A throw-away S3Proxy (free port, temporary directory), or null with the reason. */
export const startS3Proxy = async (): Promise<S3Found> => {
  const problem = localS3Problem()
  if (problem !== null) return { s3: null, detail: `no S3 server (${problem})`, problem, teardown: async () => undefined }
  const server = await startLocalS3()
  const { endpoint, accessKeyId, secretAccessKey, region, bucket } = server
  return {
    s3: { endpoint, accessKeyId, secretAccessKey, region, bucket },
    detail: `S3Proxy pid ${server.pid} at ${endpoint} bucket ${bucket} (ready in ${(server.startedInMs / 1000).toFixed(1)} s)`,
    teardown: () => server.stop()
  }
}

const s3Detail = (s3: S3Endpoints): string => `AWS_ENDPOINT_URL_S3=${s3.endpoint} LAKE_BUCKET=${s3.bucket}`

export const fromEnv = async (): Promise<Attempt> => {
  const pgUrl = process.env["PG_URL"]
  const kafkaBrokers = process.env["KAFKA_BROKERS"]
  if (!pgUrl || !kafkaBrokers) return { skipped: "PG_URL and KAFKA_BROKERS are not both set" }
  const kafkaVersion = process.env["KAFKA_VERSION"]
  const fromEnvS3 = s3FromEnv()
  const found: S3Found = fromEnvS3 !== null
    ? { s3: fromEnvS3, detail: s3Detail(fromEnvS3), teardown: async () => undefined }
    : await startS3Proxy()
  return {
    resolved: {
      endpoints: { pgUrl, kafkaBrokers, source: "env", ...(kafkaVersion ? { kafkaVersion } : {}), s3: found.s3 },
      detail: `PG_URL=${pgUrl.replace(/:[^:@/]*@/, ":***@")} KAFKA_BROKERS=${kafkaBrokers}; ${found.detail}`,
      ...(found.problem === undefined ? {} : { s3Problem: found.problem }),
      teardown: found.teardown
    }
  }
}

/** MinIO in a container; the same image as docker-compose.yml. */
export const MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"

const startMinio = async (): Promise<S3Found> => {
  const { MinioContainer } = await import("@testcontainers/minio")
  const { ensureBucket } = await import("../../scripts/stack/s3Server.ts")
  const minio = await new MinioContainer(MINIO_IMAGE).start()
  const s3: S3Endpoints = {
    endpoint: minio.getConnectionUrl(),
    accessKeyId: minio.getUsername(),
    secretAccessKey: minio.getPassword(),
    region: "us-east-1",
    bucket: "lake-test"
  }
  await ensureBucket(s3)
  return { s3, detail: `${MINIO_IMAGE} container ${minio.getId().slice(0, 12)} at ${s3.endpoint}`, teardown: async () => void (await minio.stop()) }
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
    // Logical capture's tests need it (the image's user is a superuser, so REPLICATION is implied).
    .withCommand(["postgres", "-c", "wal_level=logical", "-c", "max_replication_slots=20", "-c", "max_wal_senders=20"])
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
    const minio = await startMinio().catch(async (error: unknown) => {
      await kafka.stop().catch(() => undefined)
      throw error
    })
    return {
      resolved: {
        endpoints: { pgUrl: postgres.getConnectionUri(), kafkaBrokers, source: "testcontainers", kafkaVersion: KAFKA_VERSION, s3: minio.s3 },
        detail: `postgres:15 container ${postgres.getId().slice(0, 12)}, apache/kafka:${KAFKA_VERSION} container ${kafka.getId().slice(0, 12)} at ${kafkaBrokers}; ${minio.detail}`,
        teardown: async () => {
          await Promise.allSettled([kafka.stop(), postgres.stop(), minio.teardown()])
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
  // The broker and S3Proxy start side by side: two JVMs, but the wait overlaps.
  const [kafkaOutcome, s3Outcome] = await Promise.allSettled([startLocalKafka(), startS3Proxy()])
  if (kafkaOutcome.status === "rejected") {
    if (s3Outcome.status === "fulfilled") await s3Outcome.value.teardown()
    throw kafkaOutcome.reason
  }
  const kafka = kafkaOutcome.value
  const s3: S3Found = s3Outcome.status === "fulfilled"
    ? s3Outcome.value
    : { s3: null, detail: "no S3 server", problem: `S3Proxy failed to start: ${String(s3Outcome.reason)}`, teardown: async () => undefined }
  return {
    resolved: {
      endpoints: { pgUrl: pg.pgUrl, kafkaBrokers: kafka.brokers, source: "local-stack", kafkaVersion: kafka.kafkaVersion, s3: s3.s3 },
      detail: `database ${pg.database} as ${pg.role}; Kafka ${kafka.kafkaVersion} broker pid ${kafka.pid} at ${kafka.brokers} (data ${kafka.dir}); ${s3.detail}`,
      ...(s3.problem === undefined ? {} : { s3Problem: s3.problem }),
      teardown: async () => {
        await Promise.allSettled([kafka.stop(), s3.teardown()])
      }
    }
  }
}
