/**
 * Our checkpoint codec (src/table/checkpointParquet.ts) against real Spark 4.0.1 + delta-spark 4.0.0:
 * (a) Spark reads a table whose early commits exist only in a checkpoint we wrote; (b) we read the
 * checkpoint Spark writes on its own at version 10, and find the table Spark reports.
 */
import { randomUUID } from "node:crypto"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parquetMetadata, parquetSchema } from "hyparquet"
import { parquetWriteBuffer } from "hyparquet-writer"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Cents } from "../../src/domain/Amount.ts"
import type { Order } from "../../src/domain/Order.ts"
import type { Micros } from "../../src/domain/Timestamp.ts"
import { orderColumns, orderSchema } from "../../src/table/orderColumns.ts"
import { type Action, type AddFile, parseCommit, serializeCommit } from "../../src/table/actions.ts"
import { decodeCheckpoint, encodeCheckpoint } from "../../src/table/checkpointParquet.ts"
import { checkpointActions, SnapshotBuilder, statsOf } from "../../src/table/snapshot.ts"
import { handWrittenOrdersSchema } from "../support/ordersSchemaFixture.ts"
import { type SparkSession, sparkSkipReason, startSpark } from "../support/spark.ts"

const logFile = (version: number, suffix = "json") => `${String(version).padStart(20, "0")}.${suffix}`

const schemaString = handWrittenOrdersSchema

/** Orders `from..from+count-1` on `date`: whole-millisecond instants, some null amounts. */
const ordersOn = (date: string, from: number, count: number): Array<Order> =>
  Array.from({ length: count }, (_, i) => {
    const id = from + i
    return {
      order_id: id,
      customer_name: `customer ${id}`,
      restaurant_name: "Pizzeria",
      item: "Margherita",
      amount: (id % 7 === 0 ? null : 100 + id * 13) as Cents | null,
      order_status: "PLACED",
      created_at: (BigInt(Date.parse(`${date}T00:00:00Z`) + id * 1_000) * 1000n) as Micros
    }
  })

const isoMs = (micros: bigint) => new Date(Number(micros / 1000n)).toISOString()

/** Writes one data file of the table, and returns its `add` with exact stats. */
const writeDataFile = (root: string, date: string, orders: ReadonlyArray<Order>): AddFile => {
  const file = `date=${date}/part-00000-${randomUUID()}.c000.snappy.parquet`
  mkdirSync(join(root, `date=${date}`), { recursive: true })
  writeFileSync(
    join(root, file),
    new Uint8Array(parquetWriteBuffer({ columnData: orderColumns(orders), schema: orderSchema as never, codec: "SNAPPY" }))
  )
  const stat = statSync(join(root, file))
  const amounts = orders.flatMap((o) => (o.amount === null ? [] : [o.amount]))
  const ids = orders.map((o) => o.order_id)
  const created = orders.map((o) => o.created_at)
  const stats = {
    numRecords: orders.length,
    minValues: { order_id: Math.min(...ids), amount: Math.min(...amounts) / 100, created_at: isoMs(created.reduce((a, b) => (a < b ? a : b))) },
    maxValues: { order_id: Math.max(...ids), amount: Math.max(...amounts) / 100, created_at: isoMs(created.reduce((a, b) => (a > b ? a : b))) },
    nullCount: { order_id: 0, amount: orders.length - amounts.length, created_at: 0 }
  }
  return {
    path: file.split("/").map(encodeURIComponent).join("/"),
    partitionValues: { date },
    size: stat.size,
    modificationTime: Math.floor(stat.mtimeMs),
    dataChange: true,
    stats: JSON.stringify(stats)
  }
}

/** Spark's decimal(20,2) sum as text. */
const centsText = (cents: number) => `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, "0")}`
const totalCents = (orders: ReadonlyArray<Order>) => orders.reduce((sum, o) => sum + (o.amount ?? 0), 0)

const skipReason = sparkSkipReason()

describe.skipIf(skipReason !== null)(`Delta checkpoints: our Parquet codec and Spark${skipReason === null ? "" : ` (skipped: ${skipReason})`}`, () => {
  let spark: SparkSession
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "checkpoint-spark-"))
    spark = await startSpark()
  })

  afterAll(async () => {
    await spark?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it("Spark reads a table whose commits 0..2 survive only in our checkpoint", async () => {
    const root = join(dir, "node_written")
    const log = join(root, "_delta_log")
    mkdirSync(log, { recursive: true })
    const now = Date.now()

    const files = new Map<string, ReadonlyArray<Order>>() // path -> its rows, for the expected answers
    const addOf = (date: string, orders: ReadonlyArray<Order>): AddFile => {
      const add = writeDataFile(root, date, orders)
      files.set(add.path, orders)
      return add
    }
    const first = addOf("2025-01-15", ordersOn("2025-01-15", 1, 40))
    const commits: Array<ReadonlyArray<Action>> = [
      [
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
        { add: first },
        { add: addOf("2025-01-16", ordersOn("2025-01-16", 101, 25)) },
        { txn: { appId: "food_orders_raw-0", version: 100, lastUpdated: now } }
      ],
      [
        { add: addOf("2025-01-16", ordersOn("2025-01-16", 201, 30)) },
        { txn: { appId: "food_orders_raw-0", version: 130, lastUpdated: now + 1 } },
        { txn: { appId: "food_orders_raw-1", version: 7, lastUpdated: now + 1 } }
      ],
      [
        // A compaction-like swap: the first file goes (a tombstone in the checkpoint), its rows come back.
        { remove: { path: first.path, deletionTimestamp: now + 2, dataChange: false, extendedFileMetadata: true, partitionValues: first.partitionValues, size: first.size } },
        { add: { ...addOf("2025-01-15", ordersOn("2025-01-15", 1, 40)), dataChange: false } },
        { add: addOf("2025-01-17", ordersOn("2025-01-17", 301, 10)) },
        { txn: { appId: "food_orders_raw-0", version: 175, lastUpdated: now + 2 } }
      ],
      [
        { add: addOf("2025-01-17", ordersOn("2025-01-17", 401, 15)) },
        { txn: { appId: "food_orders_raw-2", version: 3, lastUpdated: now + 3 } },
        { commitInfo: { operation: "WRITE", engineInfo: "food-orders-pipeline" } }
      ]
    ]
    const builder = new SnapshotBuilder()
    commits.forEach((actions, version) => {
      const text = serializeCommit(actions)
      writeFileSync(join(log, logFile(version)), text)
      builder.apply(version, parseCommit(text), now + version)
    })
    const snapshot = builder.build()
    expect(snapshot.files.size).toBe(5)
    expect(snapshot.tombstones.size).toBe(1)

    const actions = checkpointActions(snapshot)
    const checkpoint = encodeCheckpoint(actions)
    writeFileSync(join(log, logFile(3, "checkpoint.parquet")), checkpoint)
    writeFileSync(join(log, "_last_checkpoint"), JSON.stringify({ version: 3, size: actions.length }))
    expect(await decodeCheckpoint(checkpoint)).toEqual(actions)
    for (const version of [0, 1, 2]) rmSync(join(log, logFile(version)))
    expect(readdirSync(log).sort()).toEqual(["00000000000000000003.checkpoint.parquet", "00000000000000000003.json", "_last_checkpoint"])

    const live = [...snapshot.files.keys()].flatMap((path) => files.get(path)!)
    const table = `delta.\`${root}\``
    const totals = await spark.sql(`SELECT count(*), count(amount), sum(amount), count(DISTINCT date) FROM ${table}`)
    expect(totals.rows).toEqual([[live.length, live.filter((o) => o.amount !== null).length, centsText(totalCents(live)), 3]])
    // Row by row, not only from the stats: min/max/sum per partition over the real files.
    const perDay = await spark.sql(`SELECT date, count(order_id), min(order_id), max(order_id) FROM ${table} GROUP BY date ORDER BY date`)
    expect(perDay.rows).toEqual([
      ["2025-01-15", 40, 1, 40],
      ["2025-01-16", 55, 101, 230],
      ["2025-01-17", 25, 301, 415]
    ])
    // Our Parquet footers' created_by parses (before: a VersionParseException stack trace per file read).
    expect(spark.stderr()).not.toContain("VersionParseException")
    // Data skipping with the checkpoint's stats must not lose rows.
    expect((await spark.sql(`SELECT count(*) FROM ${table} WHERE order_id > 400`)).rows).toEqual([[15]])

    expect((await spark.sql(`SELECT count(*) FROM ${table} VERSION AS OF 3`)).rows).toEqual([[live.length]])
    // Versions before the checkpoint are gone with their commits.
    await expect(spark.sql(`SELECT count(*) FROM ${table} VERSION AS OF 2`)).rejects.toThrow(/VersionNotFoundException: Cannot time travel Delta table to version 2/)

    const detail = await spark.sql(`DESCRIBE DETAIL ${table}`)
    const col = (name: string) => detail.rows[0]![detail.columns.indexOf(name)]
    expect(col("numFiles")).toBe(5)
    expect(col("sizeInBytes")).toBe([...snapshot.files.values()].reduce((sum, add) => sum + add.size, 0))
    expect(col("partitionColumns")).toEqual(["date"])

    // The txns came from the checkpoint only (commits 0..2 are deleted): Spark skips a batch it has seen.
    await spark.sql("SET spark.databricks.delta.write.txnAppId = food_orders_raw-0")
    await spark.sql("SET spark.databricks.delta.write.txnVersion = 130")
    try {
      await spark.sql(`INSERT INTO ${table} SELECT 9999, 'x', 'y', 'z', 'PLACED', 1.00, TIMESTAMP'2025-01-18 00:00:00', DATE'2025-01-18'`)
    } finally {
      await spark.sql("RESET spark.databricks.delta.write.txnAppId")
      await spark.sql("RESET spark.databricks.delta.write.txnVersion")
    }
    expect(existsSync(join(log, logFile(4)))).toBe(false)

    // And Spark goes on writing on top of it: checkpoint 3 + commits 3 and 4.
    await spark.sql(`INSERT INTO ${table} SELECT 9999, 'x', 'y', 'z', 'PLACED', 1.00, TIMESTAMP'2025-01-18 00:00:00', DATE'2025-01-18'`)
    expect(existsSync(join(log, logFile(4)))).toBe(true)
    expect((await spark.sql(`SELECT count(*), sum(amount) FROM ${table}`)).rows).toEqual([[live.length + 1, centsText(totalCents(live) + 100)]])
  }, 300_000)

  it("reads the checkpoint Spark writes at version 10, and finds the table Spark reports", async () => {
    const root = join(dir, "spark_written")
    const log = join(root, "_delta_log")
    const table = `delta.\`${root}\``
    await spark.sql(
      `CREATE TABLE ${table} (order_id BIGINT, customer_name STRING, amount DECIMAL(10,2), created_at TIMESTAMP, date DATE) USING delta PARTITIONED BY (date)`
    )
    const insert = (version: number) =>
      spark.sql(`INSERT INTO ${table} VALUES
        (${version * 10 + 1}, 'Zoë ${version}', ${version}.25, TIMESTAMP'2025-01-15 10:00:00.123456', DATE'2025-01-${String(10 + (version % 3)).padStart(2, "0")}'),
        (${version * 10 + 2}, NULL, NULL, TIMESTAMP'2025-01-16 00:00:00', DATE'2025-01-${String(10 + ((version + 1) % 3)).padStart(2, "0")}')`)
    // Versions 1..9: inserts, some as idempotent writes of two applications (txn actions).
    for (let version = 1; version <= 9; version++) {
      if (version % 2 === 1) {
        await spark.sql(`SET spark.databricks.delta.write.txnAppId = app-${version % 4}`)
        await spark.sql(`SET spark.databricks.delta.write.txnVersion = ${version}`)
      }
      try {
        await insert(version)
      } finally {
        await spark.sql("RESET spark.databricks.delta.write.txnAppId")
        await spark.sql("RESET spark.databricks.delta.write.txnVersion")
      }
    }
    // Version 10: a DELETE of a whole partition (files removed: tombstones), then Spark's checkpoint.
    await spark.sql(`DELETE FROM ${table} WHERE date = DATE'2025-01-10'`)
    // Version 11: after the checkpoint.
    await insert(11)

    const checkpointPath = join(log, logFile(10, "checkpoint.parquet"))
    expect(existsSync(checkpointPath)).toBe(true)
    const lastCheckpoint = JSON.parse(readFileSync(join(log, "_last_checkpoint"), "utf8")) as { version: number; size: number }
    expect(lastCheckpoint.version).toBe(10)

    const checkpointBytes = readFileSync(checkpointPath)
    // Spark's checkpoint has columns ours has not, which the decoder passes over (null here).
    const sparkSchema = parquetSchema(parquetMetadata(checkpointBytes.buffer.slice(checkpointBytes.byteOffset, checkpointBytes.byteOffset + checkpointBytes.byteLength) as ArrayBuffer))
    const childrenOf = (name: string) => sparkSchema.children.find((c) => c.element.name === name)?.children.map((c) => c.element.name)
    expect(sparkSchema.children.map((c) => c.element.name)).toEqual(["txn", "add", "remove", "metaData", "protocol", "domainMetadata"])
    expect(childrenOf("add")).toEqual(expect.arrayContaining(["deletionVector", "baseRowId", "partitionValues_parsed", "stats"]))
    const actions = await decodeCheckpoint(checkpointBytes)
    expect(actions.length).toBe(lastCheckpoint.size)
    const adds = actions.flatMap((a) => ("add" in a ? [a.add] : []))
    const removes = actions.flatMap((a) => ("remove" in a ? [a.remove] : []))
    const txns = actions.flatMap((a) => ("txn" in a ? [a.txn] : []))
    const protocols = actions.flatMap((a) => ("protocol" in a ? [a.protocol] : []))
    const metadatas = actions.flatMap((a) => ("metaData" in a ? [a.metaData] : []))

    expect(protocols.length).toBe(1)
    expect(protocols[0]!.minReaderVersion).toBeGreaterThanOrEqual(1)
    expect(metadatas.length).toBe(1)
    expect(metadatas[0]!.partitionColumns).toEqual(["date"])
    expect(JSON.parse(metadatas[0]!.schemaString).fields.map((f: { name: string }) => f.name)).toEqual([
      "order_id",
      "customer_name",
      "amount",
      "created_at",
      "date"
    ])
    expect(new Map(txns.map((t) => [t.appId, t.version]))).toEqual(new Map([["app-1", 9], ["app-3", 7]]))
    expect(txns.every((t) => typeof t.lastUpdated === "number")).toBe(true)
    expect(removes.length).toBeGreaterThan(0)
    expect(removes.every((r) => r.partitionValues?.["date"] === "2025-01-10")).toBe(true)
    expect(adds.every((a) => a.partitionValues["date"] !== "2025-01-10" && typeof a.size === "number")).toBe(true)

    // The live files of version 10, as Spark counts them.
    const sparkFiles = await spark.sql(`SELECT count(DISTINCT _metadata.file_path), count(*) FROM ${table} VERSION AS OF 10`)
    expect(adds.length).toBe(sparkFiles.rows[0]![0])
    // Spark's stats, as JSON text in the checkpoint, count the rows.
    expect(adds.reduce((sum, add) => sum + (statsOf(add)?.numRecords ?? Number.NaN), 0)).toBe(sparkFiles.rows[0]![1])

    // Checkpoint 10 + commit 11 replayed by us: the table Spark describes now.
    const builder = new SnapshotBuilder().apply(10, actions, 0)
    builder.apply(11, parseCommit(readFileSync(join(log, logFile(11)), "utf8")), 0)
    const detail = await spark.sql(`DESCRIBE DETAIL ${table}`)
    const col = (name: string) => detail.rows[0]![detail.columns.indexOf(name)]
    expect(builder.files.size).toBe(col("numFiles"))
    expect([...builder.files.values()].reduce((sum, add) => sum + add.size, 0)).toBe(col("sizeInBytes"))

    // Our re-encoding of Spark's checkpoint replaces it, with commits 0..9 gone: Spark reads the same table.
    const copy = join(dir, "spark_written_reencoded")
    cpSync(root, copy, { recursive: true })
    const copyLog = join(copy, "_delta_log")
    writeFileSync(join(copyLog, logFile(10, "checkpoint.parquet")), encodeCheckpoint(actions))
    writeFileSync(join(copyLog, "_last_checkpoint"), JSON.stringify({ version: 10, size: actions.length }))
    for (const name of readdirSync(copyLog)) {
      const version = Number(name.replace(/^\./, "").slice(0, 20))
      if (/^\.?\d{20}\.(json|crc|json\.crc|crc\.crc)$/.test(name) && version < 10) rmSync(join(copyLog, name))
      // Hadoop's checksum of Spark's bytes: its local file system would refuse our bytes under it.
      if (name.endsWith(".checkpoint.parquet.crc")) rmSync(join(copyLog, name))
    }
    const expected = await spark.sql(`SELECT count(*), sum(amount), count(DISTINCT date) FROM ${table}`)
    expect((await spark.sql(`SELECT count(*), sum(amount), count(DISTINCT date) FROM delta.\`${copy}\``)).rows).toEqual(expected.rows)
    expect((await spark.sql(`SELECT count(*) FROM delta.\`${copy}\` VERSION AS OF 10`)).rows).toEqual([[sparkFiles.rows[0]![1]]])
  }, 300_000)
})
