/**
 * Proves the integration harness against the real components the pipeline uses: Kafka through
 * kafkajs, PostgreSQL through @effect/sql-pg, Parquet written by hyparquet-writer and read by DuckDB.
 * If this file fails, the pipeline tests cannot be trusted either way.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DuckDBInstance } from "@duckdb/node-api"
import { SqlClient } from "@effect/sql"
import { layer } from "@effect/vitest"
import { Effect } from "effect"
import { parquetWriteFile } from "hyparquet-writer"
import { Partitioners } from "kafkajs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { repoRoot } from "../../scripts/stack/paths.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { createTopics, deleteTopics, readMessages, testKafka } from "../support/kafka.ts"
import { uniqueName } from "../support/names.ts"
import { pgTestLayer, scopedOrdersTable } from "../support/postgres.ts"

/** The reference message of the design (DESIGN.md, "Contracts"). */
const referenceOrder = {
  order_id: 101,
  customer_name: "John Doe",
  restaurant_name: "Burger Junction",
  item: "Veg Burger",
  amount: 220.0,
  order_status: "PLACED",
  created_at: "2025-01-15T12:24:00Z"
}

describeIntegration("integration harness", (endpoints) => {
  it("reports where the endpoints came from", () => {
    // Visible in CI output: which real broker and database this run used.
    console.info(`[harness] source=${endpoints.source} kafka=${endpoints.kafkaBrokers} version=${endpoints.kafkaVersion ?? "?"}`)
    expect(["env", "testcontainers", "local-stack"]).toContain(endpoints.source)
  })

  describe("Kafka via kafkajs", () => {
    const topic = uniqueName("harness")
    beforeAll(() => createTopics(endpoints.kafkaBrokers, [topic]))
    afterAll(() => deleteTopics(endpoints.kafkaBrokers, [topic]))

    it("creates a topic with the admin client", async () => {
      const admin = testKafka(endpoints.kafkaBrokers).admin()
      await admin.connect()
      try {
        const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
        expect(metadata.topics).toHaveLength(1)
        expect(metadata.topics[0]!.partitions).toHaveLength(1)
        expect(metadata.topics[0]!.partitions[0]!.leader).toBeGreaterThanOrEqual(0)
      } finally {
        await admin.disconnect()
      }
    })

    it("round-trips a keyed message with headers through an idempotent acks=all producer", async () => {
      const producer = testKafka(endpoints.kafkaBrokers).producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner
      })
      await producer.connect()
      const value = JSON.stringify(referenceOrder)
      try {
        const [ack] = await producer.send({
          topic,
          acks: -1,
          messages: [{ key: String(referenceOrder.order_id), value, headers: { "x-op": "insert" } }]
        })
        expect(ack?.errorCode).toBe(0)
        expect(ack?.baseOffset).toBe("0")
      } finally {
        await producer.disconnect()
      }

      const [message, ...rest] = await readMessages(endpoints.kafkaBrokers, topic, 1)
      expect(rest).toEqual([])
      expect(message).toEqual({ partition: 0, offset: "0", key: "101", value, headers: { "x-op": "insert" } })
      expect(JSON.parse(message!.value!)).toEqual(referenceOrder)
    })
  })

  layer(pgTestLayer(endpoints.pgUrl), { excludeTestServices: true })("PostgreSQL via @effect/sql-pg", (it) => {
    it.scoped("creates a per-test orders table and reads NUMERIC as an exact string and created_at in UTC", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = yield* scopedOrdersTable("harness")

        const inserted = yield* sql<{ order_id: number; amount: string; created_at: Date; xact_start_utc: Date }>`
          INSERT INTO ${sql(table)} (customer_name, restaurant_name, item, amount, order_status)
          VALUES ('John Doe', 'Burger Junction', 'Veg Burger', 220, 'PLACED')
          RETURNING order_id, amount, created_at AT TIME ZONE 'UTC' AS created_at, now() AS xact_start_utc`
        expect(inserted).toHaveLength(1)
        const row = inserted[0]!
        expect(row.order_id).toBe(1)
        // NUMERIC comes back as a string: no float rounding between the database and the lake.
        expect(row.amount).toBe("220.00")
        // The default is the transaction's start time, stored as UTC wall time.
        expect(row.created_at).toBeInstanceOf(Date)
        expect(row.created_at.getTime()).toBe(row.xact_start_utc.getTime())

        const [text] = yield* sql<{ created_at: string }>`
          SELECT to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US') AS created_at FROM ${sql(table)}`
        expect(`${text!.created_at.slice(0, 23)}Z`).toBe(row.created_at.toISOString())
      }))

    it.scoped("db/001_orders.sql and ordersTableDdl create the same table, and the sample load is idempotent", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const fromHelper = yield* scopedOrdersTable("helper")
        // db/001 for a per-test name, so the shared database is not touched.
        const fromFile = uniqueName("file")
        const script = readFileSync(join(repoRoot, "db", "001_orders.sql"), "utf8").replaceAll("2025em1100506_orders", fromFile)
        yield* Effect.acquireRelease(
          sql.unsafe(script),
          () => Effect.orDie(sql.unsafe(`DROP TABLE IF EXISTS "${fromFile}"`))
        )
        yield* sql.unsafe(script) // second run: no error, no new rows

        const columns = (t: string) =>
          sql<{ column_name: string; data_type: string; precision: number | null; scale: number | null; length: number | null; column_default: string | null }>`
            SELECT column_name, data_type, numeric_precision AS precision, numeric_scale AS scale,
                   character_maximum_length AS length, replace(column_default, ${t}, '<table>') AS column_default
            FROM information_schema.columns WHERE table_name = ${t} ORDER BY ordinal_position`
        const indexes = (t: string) =>
          sql<{ definition: string }>`
            SELECT replace(indexdef, ${t}, '<table>') AS definition FROM pg_indexes WHERE tablename = ${t} ORDER BY indexname`
        expect(yield* columns(fromFile)).toEqual(yield* columns(fromHelper))
        expect(yield* indexes(fromFile)).toEqual(yield* indexes(fromHelper))
        const identity = (t: string) => sql<{ identity: string }>`SELECT relreplident AS identity FROM pg_class WHERE relname = ${t}`
        expect(yield* identity(fromFile)).toEqual([{ identity: "f" }])
        expect(yield* identity(fromHelper)).toEqual([{ identity: "f" }])

        const [counts] = yield* sql<{ rows: string; max_id: number; next_id: number }>`
          SELECT count(*) AS rows, max(order_id) AS max_id, nextval(pg_get_serial_sequence(${`"${fromFile}"`}, 'order_id'))::int AS next_id
          FROM ${sql(fromFile)}`
        expect(counts).toEqual({ rows: "10", max_id: 110, next_id: 111 })
      }))
  })

  describe("Parquet via hyparquet-writer, read back by DuckDB", () => {
    let dir = ""
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "harness-lake-"))
    })
    afterAll(() => rmSync(dir, { recursive: true, force: true }))

    it("keeps DECIMAL(10,2), UTC TIMESTAMP and the hive date partition", async () => {
      const partition = join(dir, "date=2025-01-15")
      mkdirSync(partition)
      const createdAt = [new Date("2025-01-15T12:24:00Z"), new Date("2025-01-15T23:59:59.123Z")]
      parquetWriteFile({
        filename: join(partition, "part-0.parquet"),
        columnData: [
          { name: "order_id", data: [101n, 102n] },
          { name: "customer_name", data: ["John Doe", "Priya Sharma"] },
          { name: "amount", data: [220, 340.5] },
          { name: "created_at", data: createdAt }
        ],
        schema: [
          { name: "root", num_children: 4 },
          { name: "order_id", type: "INT64", repetition_type: "REQUIRED" },
          { name: "customer_name", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
          {
            name: "amount",
            type: "INT64",
            converted_type: "DECIMAL",
            precision: 10,
            scale: 2,
            logical_type: { type: "DECIMAL", precision: 10, scale: 2 },
            repetition_type: "OPTIONAL"
          },
          {
            name: "created_at",
            type: "INT64",
            converted_type: "TIMESTAMP_MICROS",
            logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
            repetition_type: "OPTIONAL"
          }
        ]
      })

      const instance = await DuckDBInstance.create(":memory:")
      const connection = await instance.connect()
      try {
        const source = `read_parquet('${dir}/**/*.parquet', hive_partitioning = true)`
        const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)
        expect(
          Object.fromEntries(described.getRowObjectsJson().map((r) => [String(r["column_name"]), String(r["column_type"])]))
        ).toEqual({
          order_id: "BIGINT",
          customer_name: "VARCHAR",
          amount: "DECIMAL(10,2)",
          created_at: "TIMESTAMP WITH TIME ZONE",
          date: "DATE"
        })

        const rows = await connection.runAndReadAll(`
          SELECT order_id, customer_name, amount::VARCHAR AS amount, epoch_ms(created_at) AS created_ms,
                 date::VARCHAR AS date, sum(amount) OVER ()::VARCHAR AS total
          FROM ${source} ORDER BY order_id`)
        expect(rows.getRowObjectsJson()).toEqual([
          { order_id: "101", customer_name: "John Doe", amount: "220.00", created_ms: String(createdAt[0]!.getTime()), date: "2025-01-15", total: "560.50" },
          { order_id: "102", customer_name: "Priya Sharma", amount: "340.50", created_ms: String(createdAt[1]!.getTime()), date: "2025-01-15", total: "560.50" }
        ])
      } finally {
        connection.closeSync()
        instance.closeSync()
      }
    })
  })
})
