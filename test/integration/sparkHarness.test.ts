/**
 * The Spark harness (test/support/spark.ts): real Apache Spark 4.0.1 + delta-spark 4.0.0 in local mode
 * answers SQL over Delta tables, both one Spark wrote and one written by hand from Node the way
 * /work/shared/docs/lake-table.md describes ("A minimal commit 0 Spark read as is").
 */
import { randomUUID } from "node:crypto"
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parquetWriteBuffer } from "hyparquet-writer"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Cents } from "../../src/domain/Amount.ts"
import type { Order } from "../../src/domain/Order.ts"
import type { Micros } from "../../src/domain/Timestamp.ts"
import { orderColumns, orderSchema } from "../../src/table/orderColumns.ts"
import { type SparkSession, sparkSkipReason, startSpark } from "../support/spark.ts"

const skipReason = sparkSkipReason()

describe.skipIf(skipReason !== null)(`Spark + Delta harness${skipReason === null ? "" : ` (skipped: ${skipReason})`}`, () => {
  let spark: SparkSession
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "spark-harness-"))
    spark = await startSpark()
  })

  afterAll(async () => {
    await spark?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it("creates, appends to and time-travels a Delta table Spark writes", async () => {
    const table = `delta.\`${join(dir, "spark_written")}\``
    await spark.sql(
      `CREATE TABLE ${table} (order_id BIGINT, amount DECIMAL(10,2), created_at TIMESTAMP, date DATE) USING delta PARTITIONED BY (date)`
    )
    await spark.sql(`INSERT INTO ${table} VALUES
      (1, 12.50, TIMESTAMP'2025-01-15 10:00:00.123456', DATE'2025-01-15'),
      (2, 0.01, TIMESTAMP'2025-01-15 23:59:59.999999', DATE'2025-01-15')`)
    await spark.sql(`INSERT INTO ${table} VALUES
      (3, 99999999.99, TIMESTAMP'2025-01-16 00:00:00', DATE'2025-01-16')`)

    const totals = await spark.sql(`SELECT count(*) AS n, sum(amount) AS total FROM ${table}`)
    expect(totals.columns).toEqual(["n", "total"])
    expect(totals.types).toEqual(["bigint", "decimal(20,2)"])
    expect(totals.rows).toEqual([[3, "100000012.50"]])

    const rows = await spark.sql(`SELECT * FROM ${table} ORDER BY order_id`)
    expect(rows.columns).toEqual(["order_id", "amount", "created_at", "date"])
    expect(rows.types).toEqual(["bigint", "decimal(10,2)", "timestamp", "date"])
    expect(rows.rows).toEqual([
      [1, "12.50", "2025-01-15T10:00:00.123456Z", "2025-01-15"],
      [2, "0.01", "2025-01-15T23:59:59.999999Z", "2025-01-15"],
      [3, "99999999.99", "2025-01-16T00:00:00Z", "2025-01-16"]
    ])

    // Version 0 is the CREATE (no rows), 1 and 2 the two inserts.
    const countAt = async (clause: string) => (await spark.sql(`SELECT count(*) FROM ${table} ${clause}`)).rows[0]![0]
    expect(await countAt("VERSION AS OF 0")).toBe(0)
    expect(await countAt("VERSION AS OF 1")).toBe(2)
    expect(await countAt("VERSION AS OF 2")).toBe(3)

    const history = await spark.sql(`DESCRIBE HISTORY ${table}`)
    const column = (name: string) => history.columns.indexOf(name)
    expect(history.types[column("version")]).toBe("bigint")
    expect(history.types[column("timestamp")]).toBe("timestamp")
    expect(history.rows.map((row) => [row[column("version")], row[column("operation")]])).toEqual([
      [2, "WRITE"],
      [1, "WRITE"],
      [0, "CREATE TABLE"]
    ])
    const metrics = history.rows[0]![column("operationMetrics")] as Record<string, string>
    expect(metrics["numOutputRows"]).toBe("1")

    // Timestamp travel resolves through the commit times that DESCRIBE HISTORY shows.
    const version1At = history.rows[1]![column("timestamp")] as string
    expect(await countAt(`TIMESTAMP AS OF '${version1At}'`)).toBe(2)
  })

  it("reads a Delta table written by hand from Node with our Parquet schema", async () => {
    const root = join(dir, "node_written")
    const at = (iso: string) => BigInt(Date.parse(iso)) * 1000n
    const orders: Array<Order> = [
      order(1, "Ada", 500, at("2025-01-15T10:00:00.123Z") + 456n, "PLACED"),
      order(2, "Grace", null, at("2025-01-15T12:30:00Z"), null),
      order(3, "Linus", 9999, at("2025-01-15T23:59:59.999Z") + 999n, "DELIVERED")
    ]
    const file = `date=2025-01-15/part-00000-${randomUUID()}.c000.snappy.parquet`
    mkdirSync(join(root, "date=2025-01-15"), { recursive: true })
    writeFileSync(
      join(root, file),
      new Uint8Array(parquetWriteBuffer({ columnData: orderColumns(orders), schema: orderSchema as never, codec: "SNAPPY" }))
    )
    const size = statSync(join(root, file)).size
    const now = Date.now()
    // Exact stats: Spark trusts them (count(*) comes from numRecords). Timestamps truncated to ms.
    const stats = {
      numRecords: 3,
      minValues: { order_id: 1, amount: 5.0, created_at: "2025-01-15T10:00:00.123Z" },
      maxValues: { order_id: 3, amount: 99.99, created_at: "2025-01-15T23:59:59.999Z" },
      nullCount: { order_id: 0, amount: 1, created_at: 0 }
    }
    const field = (name: string, type: string) => ({ name, type, nullable: true, metadata: {} })
    const schemaString = JSON.stringify({
      type: "struct",
      fields: [
        field("order_id", "long"),
        field("customer_name", "string"),
        field("restaurant_name", "string"),
        field("item", "string"),
        field("order_status", "string"),
        field("amount", "decimal(10,2)"),
        field("created_at", "timestamp"),
        field("date", "date")
      ]
    })
    const commit0 = [
      { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
      {
        metaData: {
          id: randomUUID(),
          format: { provider: "parquet", options: {} },
          schemaString,
          partitionColumns: ["date"],
          configuration: {},
          createdTime: now
        }
      },
      {
        add: {
          path: file.split("/").map(encodeURIComponent).join("/"),
          partitionValues: { date: "2025-01-15" },
          size,
          modificationTime: Math.floor(statSync(join(root, file)).mtimeMs),
          dataChange: true,
          stats: JSON.stringify(stats)
        }
      },
      { txn: { appId: "food_orders_raw-0", version: 100, lastUpdated: now } }
    ]
    mkdirSync(join(root, "_delta_log"))
    writeFileSync(join(root, "_delta_log", "00000000000000000000.json"), commit0.map((a) => JSON.stringify(a)).join("\n") + "\n")

    const table = `delta.\`${root}\``
    const totals = await spark.sql(`SELECT count(*), count(order_status), sum(amount) FROM ${table}`)
    expect(totals.types).toEqual(["bigint", "bigint", "decimal(20,2)"])
    expect(totals.rows).toEqual([[3, 2, "104.99"]])

    const rows = await spark.sql(`SELECT * FROM ${table} ORDER BY order_id`)
    expect(rows.columns).toEqual([
      "order_id",
      "customer_name",
      "restaurant_name",
      "item",
      "order_status",
      "amount",
      "created_at",
      "date"
    ])
    expect(rows.types).toEqual(["bigint", "string", "string", "string", "string", "decimal(10,2)", "timestamp", "date"])
    expect(rows.rows).toEqual([
      [1, "Ada", "Pizzeria", "Margherita", "PLACED", "5.00", "2025-01-15T10:00:00.123456Z", "2025-01-15"],
      [2, "Grace", "Pizzeria", "Margherita", null, null, "2025-01-15T12:30:00Z", "2025-01-15"],
      [3, "Linus", "Pizzeria", "Margherita", "DELIVERED", "99.99", "2025-01-15T23:59:59.999999Z", "2025-01-15"]
    ])

    // A filter that data skipping answers from the stats.
    const large = await spark.sql(`SELECT order_id FROM ${table} WHERE amount > 50`)
    expect(large.rows).toEqual([[3]])
  })

  it("reports a failing statement with Spark's error and keeps the session usable", async () => {
    await expect(spark.sql(`SELECT * FROM delta.\`${join(dir, "missing")}\``)).rejects.toThrow(/DELTA_|not a Delta table|PATH_NOT_FOUND/)
    expect((await spark.sql("SELECT 1 + 1 AS two")).rows).toEqual([[2]])
  })
})

const order = (id: number, customer: string, cents: number | null, micros: bigint, status: string | null): Order => ({
  order_id: id,
  customer_name: customer,
  restaurant_name: "Pizzeria",
  item: "Margherita",
  amount: cents as Cents | null,
  order_status: status,
  created_at: micros as Micros
})
