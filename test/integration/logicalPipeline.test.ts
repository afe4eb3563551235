/**
 * Logical capture end to end: the real PostgreSQL (wal_level=logical), the real broker, the producer
 * and consumer as processes (`--once`). Orders present before the first start come through the slot's
 * snapshot; then inserts, updates (status and amount, one moving an order to another day) and deletes,
 * in one large transaction and in many small ones, and an order inserted, updated and deleted in one
 * transaction. The `orders` table must equal PostgreSQL's, column by column, read by DuckDB and by
 * Spark; `order_changes` must hold every committed change once, in commit order per order.
 */
import { Effect } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { deliveryTimesSql, openLake, runQuery } from "../../src/analytics/lakeQuery.ts"
import { changesTableBeside } from "../../src/config/PipelineConfig.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { type SparkSession, startSpark } from "../support/spark.ts"
import { runProgram } from "../support/pipelineProcess.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("logical capture end to end", (endpoints) => {
  let pipeline: TestPipeline
  let spark: SparkSession | undefined
  /** Every committed row change, as PostgreSQL reported it (statement row counts), by op. */
  const committed = { snapshot: 0, insert: 0, update: 0, delete: 0 }

  beforeAll(async () => {
    pipeline = await makeTestPipeline(endpoints, "logical", {
      extra: {
        CAPTURE_MODE: "logical",
        CAPTURE_SNAPSHOT_CHUNK: "700",
        PRODUCER_BATCH_SIZE: "500",
        CONSUMER_MAX_BATCH_MESSAGES: "800"
      }
    })
  })

  afterAll(async () => {
    await spark?.close()
    if (pipeline !== undefined) {
      const slot = `${pipeline.table.toLowerCase()}_slot`
      await pipeline.pool.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot]).catch(() => undefined)
      await pipeline.pool.query(`DROP PUBLICATION IF EXISTS "${pipeline.table}_pub"`).catch(() => undefined)
      await pipeline.close()
    }
  })

  const sql = async (text: string) => (await pipeline.pool.query(text)).rowCount ?? 0

  /** PostgreSQL's rows as the lake spells them (DuckDB's text of DECIMAL and TIMESTAMPTZ in UTC). */
  const source = async () =>
    (await pipeline.pool.query<{ row: string }>(
      `SELECT json_build_array(order_id, customer_name, restaurant_name, item, amount::text, order_status,
              to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US') || '+00')::text AS row
       FROM "${pipeline.table}" ORDER BY order_id`
    )).rows.map((r) => r.row)

  const lake = () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const db = yield* openLake(pipeline.lake)
      const orders = yield* runQuery(db, `SELECT json_array(order_id, customer_name, restaurant_name, item, amount::VARCHAR, order_status,
        strftime(created_at, '%Y-%m-%d %H:%M:%S.%f') || '+00')::VARCHAR FROM orders ORDER BY order_id`)
      const dates = yield* runQuery(db, "SELECT count(*) FROM orders WHERE date <> CAST(created_at AS DATE)")
      const changes = yield* runQuery(db, "SELECT op, count(*)::INT FROM order_changes GROUP BY op ORDER BY op")
      const repeated = yield* runQuery(db, "SELECT count(*) FROM (SELECT commit_lsn, change_seq, op, order_id FROM order_changes GROUP BY ALL HAVING count(*) > 1)")
      const delivery = yield* runQuery(db, deliveryTimesSql)
      const sequences = yield* runQuery(db, `SELECT order_id, string_agg(op || ':' || coalesce(order_status, '-'), ' ' ORDER BY commit_lsn, change_seq)
        FROM order_changes GROUP BY order_id`)
      return {
        orders: orders.rows.map((r) => JSON.stringify(JSON.parse(r[0]!))),
        misdated: Number(dates.rows[0]![0]),
        changes: Object.fromEntries(changes.rows.map(([op, n]) => [op!, Number(n)])),
        repeated: Number(repeated.rows[0]![0]),
        delivery: delivery.rows.map((row) => Object.fromEntries(delivery.columns.map((c, i) => [c, row[i]]))),
        sequences: new Map(sequences.rows.map(([id, seq]) => [Number(id), seq!]))
      }
    })))

  const normalize = (rows: ReadonlyArray<string>) => rows.map((r) => JSON.stringify(JSON.parse(r)))

  const runBoth = async () => {
    pipeline.ok(await pipeline.run("producer"))
    pipeline.ok(await pipeline.run("consumer"))
  }

  it("applies inserts, updates and deletes so that orders equals PostgreSQL and order_changes holds every change once", async () => {
    // Before the first start: these come through the slot's consistent snapshot.
    committed.snapshot += await sql(insertOrdersSql(pipeline.table, 1, 2000, "2025-01-14 22:00:00", 37))
    await runBoth()
    let read = await lake()
    expect(read.orders).toEqual(normalize(await source()))
    expect(read.changes).toEqual({ snapshot: committed.snapshot })

    // One large transaction: new orders and a status change of a third of all orders.
    await pipeline.pool.query("BEGIN")
    committed.insert += await sql(insertOrdersSql(pipeline.table, 2001, 1500, "2025-01-16 08:00:00", 11))
    committed.update += await sql(`UPDATE "${pipeline.table}" SET order_status = 'DELIVERED' WHERE order_id % 3 = 0`)
    await pipeline.pool.query("COMMIT")
    // Many small ones: amount corrections, cancellations, deletes, a day moved.
    for (let id = 5; id <= 400; id += 5) committed.update += await sql(`UPDATE "${pipeline.table}" SET amount = amount + 1.05 WHERE order_id = ${id}`)
    for (let id = 7; id <= 700; id += 7) committed.update += await sql(`UPDATE "${pipeline.table}" SET order_status = 'CANCELLED' WHERE order_id = ${id}`)
    for (let id = 11; id <= 1100; id += 11) committed.delete += await sql(`DELETE FROM "${pipeline.table}" WHERE order_id = ${id}`)
    committed.update += await sql(`UPDATE "${pipeline.table}" SET created_at = created_at + INTERVAL '3 days' WHERE order_id = 1000`)
    // Inserted, updated and deleted within one transaction; and one inserted and updated.
    await pipeline.pool.query("BEGIN")
    const { rows: [born] } = await pipeline.pool.query<{ order_id: number }>(
      `INSERT INTO "${pipeline.table}" (customer_name, restaurant_name, item, amount, order_status) VALUES ('Brief', 'Spice Route', 'Dosa', 1.00, 'PLACED') RETURNING order_id`
    )
    committed.insert += 1
    committed.update += await sql(`UPDATE "${pipeline.table}" SET order_status = 'PREPARING' WHERE order_id = ${born!.order_id}`)
    committed.delete += await sql(`DELETE FROM "${pipeline.table}" WHERE order_id = ${born!.order_id}`)
    const { rows: [kept] } = await pipeline.pool.query<{ order_id: number }>(
      `INSERT INTO "${pipeline.table}" (customer_name, restaurant_name, item, amount, order_status) VALUES ('Kept', 'Spice Route', 'Dosa', 2.00, 'PLACED') RETURNING order_id`
    )
    committed.insert += 1
    committed.update += await sql(`UPDATE "${pipeline.table}" SET order_status = 'DELIVERED', amount = 2.50 WHERE order_id = ${kept!.order_id}`)
    await pipeline.pool.query("COMMIT")
    // A statement that changes nothing commits no change.
    await sql(`UPDATE "${pipeline.table}" SET order_status = 'DELIVERED' WHERE order_id < 0`)

    await runBoth()
    // A second run of each finds nothing new and changes nothing.
    await runBoth()

    read = await lake()
    const expected = normalize(await source())
    expect(read.orders.length).toBe(expected.length)
    expect(read.orders).toEqual(expected)
    expect(read.misdated, "every row sits in the date partition of its created_at").toBe(0)
    expect(read.changes).toEqual(committed)
    expect(read.repeated).toBe(0)
    // Delivery times: the orders inserted after the start and delivered (in the large transaction: 0 minutes).
    const { rows: [deliveredAfterStart] } = await pipeline.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${pipeline.table}" WHERE order_id > 2000 AND order_status = 'DELIVERED'`
    )
    const overall = read.delivery.find((row) => row["restaurant"] === "(all)")
    expect(Number(overall?.["median_minutes"])).toBe(0)
    expect(Number(overall?.["delivered"])).toBe(deliveredAfterStart!.n)
    expect(read.sequences.get(born!.order_id)).toBe("insert:PLACED update:PREPARING delete:PREPARING")
    expect(read.sequences.get(kept!.order_id)).toBe("insert:PLACED update:DELIVERED")
    // Order 21 (a multiple of 3 and 7): snapshot, delivered in the large transaction, then cancelled.
    expect(read.sequences.get(21)).toMatch(/^snapshot:\w+ update:DELIVERED update:CANCELLED$/)
    // Order 33 (a multiple of 3 and 11): delivered, then deleted; the delete carries what it removed.
    expect(read.sequences.get(33)).toMatch(/^snapshot:\w+ update:DELIVERED delete:DELIVERED$/)

    // Spark (delta-spark) reads both tables as DuckDB does.
    spark = await startSpark()
    const ordersTable = `delta.\`${pipeline.lake}\``
    const changesTable = `delta.\`${changesTableBeside(pipeline.lake)}\``
    const { rows: [totals] } = await pipeline.pool.query<{ n: number; sum: string; delivered: number }>(
      `SELECT count(*)::int AS n, sum(amount)::text AS sum, count(*) FILTER (WHERE order_status = 'DELIVERED')::int AS delivered FROM "${pipeline.table}"`
    )
    const sparkTotals = await spark.sql(
      `SELECT count(*), CAST(sum(amount) AS STRING), count_if(order_status = 'DELIVERED') FROM ${ordersTable}`
    )
    expect(sparkTotals.rows[0]!.map(String)).toEqual([String(totals!.n), totals!.sum, String(totals!.delivered)])
    const sparkChanges = await spark.sql(`SELECT op, count(*) FROM ${changesTable} GROUP BY op`)
    expect(Object.fromEntries(sparkChanges.rows.map(([op, n]) => [String(op), Number(n)]))).toEqual(committed)
  }, 600_000)

  it("applies a 100,000-row transaction (inserted, then all updated in one COMMIT) within 256 MB per program", async () => {
    const big = await makeTestPipeline(endpoints, "logicalbig", { extra: { CAPTURE_MODE: "logical" } })
    try {
      await big.pool.query(insertOrdersSql(big.table, 1, 100_000, "2025-02-01 00:00:00", 2))
      big.ok(await big.run("producer"))
      const snapshot = big.ok(await big.run("consumer"))
      const snapshotRss = Number(big.annotation(snapshot, "drained")?.["max_rss_mb"])
      await big.pool.query(`UPDATE "${big.table}" SET order_status = 'DELIVERED', amount = amount + 0.01`)
      const producer = big.ok(await big.run("producer"))
      const consumer = big.ok(await big.run("consumer"))
      const producerRss = Number(big.annotation(producer, "caught up")?.["max_rss_mb"])
      const consumerRss = Number(big.annotation(consumer, "drained")?.["max_rss_mb"])
      process.stderr.write(
        `[logical] 100k-row snapshot: consumer ${snapshot.ms} ms, ${snapshotRss} MB; 100k-row update: producer ${producer.ms} ms, ${producerRss} MB; consumer ${consumer.ms} ms, ${consumerRss} MB\n`
      )
      expect(big.annotation(consumer, "drained")).toMatchObject({ written: 100_000, duplicates: 0 })
      expect(producerRss).toBeLessThan(256)
      expect(consumerRss).toBeLessThan(256)
      expect(snapshotRss).toBeLessThan(256)
      const read = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const db = yield* openLake(big.lake)
        const totals = yield* runQuery(db, "SELECT count(*), count(DISTINCT order_id), sum(amount)::VARCHAR, count(*) FILTER (WHERE order_status = 'DELIVERED') FROM orders")
        const changes = yield* runQuery(db, "SELECT op, count(*) FROM order_changes GROUP BY op ORDER BY op")
        return { totals: totals.rows[0]!.map(String), changes: changes.rows.map((r) => r.map(String)) }
      })))
      const { rows: [pg] } = await big.pool.query<{ sum: string }>(`SELECT sum(amount)::text AS sum FROM "${big.table}"`)
      expect(read.totals).toEqual(["100000", "100000", pg!.sum, "100000"])
      expect(read.changes).toEqual([["snapshot", "100000"], ["update", "100000"]])
    } finally {
      const slot = `${big.table.toLowerCase()}_slot`
      await big.pool.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot]).catch(() => undefined)
      await big.pool.query(`DROP PUBLICATION IF EXISTS "${big.table}_pub"`).catch(() => undefined)
      await big.close()
    }
  }, 600_000)

  it("stops loudly when its slot is dropped behind its back, and --resnapshot brings orders back in line", async () => {
    const lost = await makeTestPipeline(endpoints, "logicallost", { extra: { CAPTURE_MODE: "logical" } })
    const slot = `${lost.table.toLowerCase()}_slot`
    try {
      await lost.pool.query(insertOrdersSql(lost.table, 1, 50, "2025-03-01 10:00:00", 60))
      lost.ok(await lost.run("producer"))
      lost.ok(await lost.run("consumer"))
      await lost.pool.query("SELECT pg_drop_replication_slot($1)", [slot])
      // Committed while no slot existed: nothing will ever stream these.
      await lost.pool.query(`UPDATE "${lost.table}" SET order_status = 'DELIVERED' WHERE order_id <= 10`)
      await lost.pool.query(insertOrdersSql(lost.table, 51, 5, "2025-03-02 10:00:00", 60))
      const stopped = await lost.run("producer")
      expect(stopped.code).not.toBe(0)
      expect(stopped.stdout + stopped.stderr).toContain("may be missing")
      expect(stopped.stdout + stopped.stderr).toContain("--resnapshot")
      lost.ok(await runProgram("producer", ["--once", "--resnapshot"], lost.env))
      lost.ok(await lost.run("consumer"))
      const expected = (await lost.pool.query<{ row: string }>(
        `SELECT json_build_array(order_id, order_status, amount::text)::text AS row FROM "${lost.table}" ORDER BY order_id`
      )).rows.map((r) => JSON.stringify(JSON.parse(r.row)))
      const inLake = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const db = yield* openLake(lost.lake)
        return (yield* runQuery(db, "SELECT json_array(order_id, order_status, amount::VARCHAR)::VARCHAR FROM orders ORDER BY order_id")).rows
          .map((r) => JSON.stringify(JSON.parse(r[0]!)))
      })))
      expect(inLake).toEqual(expected)
    } finally {
      await lost.pool.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot]).catch(() => undefined)
      await lost.pool.query(`DROP PUBLICATION IF EXISTS "${lost.table}_pub"`).catch(() => undefined)
      await lost.close()
    }
  }, 300_000)
})
