import { NodeContext } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { loadConfig } from "../../src/config/loadConfig.ts"
import { consumerGroupOf, dlqTopicOf } from "../../src/config/PipelineConfig.ts"

const reference = Fs.readFileSync("configs/orders_stream.yml", "utf8")

const written: Array<string> = []
afterAll(() => {
  for (const dir of written) Fs.rmSync(dir, { recursive: true, force: true })
})

const writeConfig = (text: string) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fop-config-"))
  written.push(dir)
  const file = Path.join(dir, "orders_stream.yml")
  Fs.writeFileSync(file, text)
  return file
}

const load = (file: string, env: Record<string, string> = {}) =>
  loadConfig(file, env).pipe(Effect.either, Effect.provide(NodeContext.layer))

const errorOf = (file: string, env: Record<string, string> = {}) =>
  load(file, env).pipe(Effect.map((result) => {
    if (Either.isRight(result)) throw new Error("expected a ConfigError")
    return result.left
  }))

describe("loadConfig", () => {
  it.effect("reads the reference keys and values for roll 2025em1100506", () =>
    Effect.gen(function*() {
      const config = Either.getOrThrow(yield* load("configs/orders_stream.yml"))
      expect(config.postgres.table).toBe("2025em1100506_orders")
      expect(config.postgres.db).toBe("food_delivery_db")
      expect(config.postgres.user).toBe("student")
      expect(Redacted.value(config.postgres.password)).toBe("student123")
      expect(config.kafka.topic).toBe("2025em1100506_food_orders_raw")
      expect(dlqTopicOf(config)).toBe("2025em1100506_food_orders_dlq")
      expect(consumerGroupOf(config)).toBe("2025em1100506_food_orders_raw_lake_writer")
      expect(config.kafka.partitions).toBe(3)
      expect(config.datalake.format).toBe("parquet")
      expect(config.datalake.path).toBe(Path.resolve("datalake/food/2025em1100506/output/orders"))
      expect(config.streaming.batch_interval).toBe(5)
      expect(String(config.postgres.password)).not.toContain("student123")
    }))

  it.effect("lets the environment override every kind of key", () =>
    Effect.gen(function*() {
      const config = Either.getOrThrow(yield* load("configs/orders_stream.yml", {
        KAFKA_BROKERS: "broker-a:9092,broker-b:9092",
        STREAMING_BATCH_INTERVAL: "0.5",
        PRODUCER_BATCH_SIZE: "100",
        PG_URL: "postgres://app:s%40cret@db.internal:6543/orders_db",
        POSTGRES_TABLE: "tenant_7_orders",
        KAFKA_PARTITIONS: "6"
      }))
      expect(config.kafka.partitions).toBe(6)
      expect(config.kafka.brokers).toBe("broker-a:9092,broker-b:9092")
      expect(config.streaming.batch_interval).toBe(0.5)
      expect(config.producer.batch_size).toBe(100)
      expect(config.postgres.host).toBe("db.internal")
      expect(config.postgres.port).toBe(6543)
      expect(config.postgres.db).toBe("orders_db")
      expect(Redacted.value(config.postgres.password)).toBe("s@cret")
      expect(config.postgres.jdbc_url).toBe("jdbc:postgresql://db.internal:6543/orders_db")
      expect(config.postgres.table).toBe("tenant_7_orders")
    }))

  it.effect("names the file and key of a missing key", () =>
    Effect.gen(function*() {
      const file = writeConfig(reference.replace(/^ {2}topic:.*$/m, ""))
      const error = yield* errorOf(file)
      expect(error.message).toBe(`${file}: kafka.topic: is missing`)
    }))

  it.effect("names the key and the expectation of a wrong value", () =>
    Effect.gen(function*() {
      const file = writeConfig(reference.replace("batch_interval: 5", "batch_interval: soon"))
      const error = yield* errorOf(file)
      expect(error.file).toBe(file)
      expect(error.key).toBe("streaming.batch_interval")
      expect(error.reason).toContain("soon")
    }))

  it.effect("rejects a table name that is not a plain identifier, before any SQL", () =>
    Effect.gen(function*() {
      const error = yield* errorOf("configs/orders_stream.yml", { POSTGRES_TABLE: "orders; DROP TABLE x" })
      expect(error.key).toBe("postgres.table from POSTGRES_TABLE (environment)")
      expect(error.reason).toContain("plain identifier")
    }))

  it.effect("rejects a topic name Kafka would not accept", () =>
    Effect.gen(function*() {
      const error = yield* errorOf("configs/orders_stream.yml", { KAFKA_TOPIC: "orders raw" })
      expect(error.key).toContain("kafka.topic")
    }))

  it.effect("rejects a wrong format, a bad port and a bad broker list", () =>
    Effect.gen(function*() {
      expect((yield* errorOf("configs/orders_stream.yml", { DATALAKE_FORMAT: "csv" })).key).toContain("datalake.format")
      expect((yield* errorOf("configs/orders_stream.yml", { POSTGRES_PORT: "99999" })).key).toContain("postgres.port")
      expect((yield* errorOf("configs/orders_stream.yml", { KAFKA_BROKERS: "localhost" })).key).toContain("kafka.brokers")
      expect((yield* errorOf("configs/orders_stream.yml", { KAFKA_PARTITIONS: "0" })).key).toContain("kafka.partitions")
    }))

  it.effect("never shows a password, even a wrong one", () =>
    Effect.gen(function*() {
      const file = writeConfig(reference.replace(`password: "student123"`, "password: 918273645"))
      const error = yield* errorOf(file)
      expect(error.key).toBe("postgres.password")
      expect(error.message).not.toContain("918273645")
    }))

  it.effect("reports unreadable files and broken YAML with the file name", () =>
    Effect.gen(function*() {
      expect((yield* errorOf("/nonexistent/orders_stream.yml")).message).toContain("/nonexistent/orders_stream.yml")
      const file = writeConfig("postgres: [unclosed\n")
      const error = yield* errorOf(file)
      expect(error.file).toBe(file)
      expect(error.key).toBe("(yaml)")
    }))
})
