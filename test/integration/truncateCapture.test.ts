/**
 * TRUNCATE under logical capture, end to end: the real PostgreSQL, the broker, the producer and the
 * consumer as processes (`--once`). A TRUNCATE of the captured table, with changes before it and
 * orders inserted after it in its own transaction and later, must leave the lake's `orders` equal to
 * PostgreSQL's rows (DuckDB and Spark), `order_changes` holding one truncate row at its commit LSN,
 * and the topic one marker per partition; a TRUNCATE of another table changes nothing. A publication
 * made before truncates were captured is altered to publish them.
 */
import { Effect } from "effect"
import { afterAll, expect, it } from "vitest"
import { openLake, runQuery } from "../../src/analytics/lakeQuery.ts"
import { changesTableBeside } from "../../src/config/PipelineConfig.ts"
import { parseLsn } from "../../src/domain/Change.ts"
import { partitionOfOrder } from "../../src/domain/orderPartition.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { adminQuery } from "../support/logicalPostgres.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { readAllRaw } from "../support/rawKafka.ts"
import { type SparkSession, startSpark } from "../support/spark.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("TRUNCATE under logical capture", (endpoints) => {
  const pipelines: Array<TestPipeline> = []
  let spark: SparkSession | undefined

  const logical = async (prefix: string) => {
    const pipeline = await makeTestPipeline(endpoints, prefix, { extra: { CAPTURE_MODE: "logical", CONSUMER_MAX_BATCH_MESSAGES: "150" } })
    pipelines.push(pipeline)
    return pipeline
  }

  afterAll(async () => {
    await spark?.close()
    for (const pipeline of pipelines) {
      const slot = `${pipeline.table.toLowerCase()}_slot`
      await pipeline.pool.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot]).catch(() => undefined)
      await pipeline.pool.query(`DROP PUBLICATION IF EXISTS "${pipeline.table}_pub"`).catch(() => undefined)
      await pipeline.pool.query(`DROP TABLE IF EXISTS "${pipeline.table}_other"`).catch(() => undefined)
      await pipeline.close()
    }
  })

  /** PostgreSQL's rows as the lake spells them (DuckDB's text of DECIMAL and TIMESTAMPTZ in UTC). */
  const source = async (pipeline: TestPipeline) =>
    (await pipeline.pool.query<{ row: string }>(
      `SELECT json_build_array(order_id, customer_name, restaurant_name, item, amount::text, order_status,
              to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US') || '+00')::text AS row
       FROM "${pipeline.table}" ORDER BY order_id`
    )).rows.map((r) => JSON.stringify(JSON.parse(r.row)))

  const lake = (pipeline: TestPipeline) =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const db = yield* openLake(pipeline.lake)
      const orders = yield* runQuery(db, `SELECT json_array(order_id, customer_name, restaurant_name, item, amount::VARCHAR, order_status,
        strftime(created_at, '%Y-%m-%d %H:%M:%S.%f') || '+00')::VARCHAR FROM orders ORDER BY order_id`)
      const truncates = yield* runQuery(db, `SELECT order_id, commit_lsn::VARCHAR, change_seq, xid, customer_name, created_at IS NULL
        FROM order_changes WHERE op = 'truncate'`)
      const sameCommit = yield* runQuery(db, `SELECT op, order_id FROM order_changes
        WHERE commit_lsn = (SELECT commit_lsn FROM order_changes WHERE op = 'truncate') ORDER BY change_seq`)
      return {
        orders: orders.rows.map((r) => JSON.stringify(JSON.parse(r[0]!))),
        truncates: truncates.rows.map((r) => r.map(String)),
        sameCommit: sameCommit.rows.map((r) => [r[0]!, Number(r[1])] as const)
      }
    })))

  const runBoth = async (pipeline: TestPipeline) => {
    pipeline.ok(await pipeline.run("producer"))
    pipeline.ok(await pipeline.run("consumer"))
  }

  it("empties the lake's orders at the TRUNCATE's LSN, keeps the orders inserted after it, and records it in order_changes", async () => {
    const pipeline = await logical("truncate")
    const q = (text: string) => pipeline.pool.query(text)
    await q(insertOrdersSql(pipeline.table, 1, 300, "2025-04-01 10:00:00", 60))
    await runBoth(pipeline)
    await q(insertOrdersSql(pipeline.table, 301, 200, "2025-04-02 10:00:00", 60))
    await q(`UPDATE "${pipeline.table}" SET order_status = 'DELIVERED' WHERE order_id % 4 = 0`)
    await runBoth(pipeline)
    expect((await lake(pipeline)).orders).toHaveLength(500)

    // Another table's TRUNCATE (alone, and in a transaction of ours) is not ours to apply.
    await q(`CREATE TABLE "${pipeline.table}_other" (id int)`)
    await q(`INSERT INTO "${pipeline.table}_other" VALUES (1)`)
    await q(`TRUNCATE "${pipeline.table}_other"`)
    // The captured table's TRUNCATE: a change before it and orders inserted after it in its transaction.
    const tx = await pipeline.pool.connect()
    let xid: string
    let lowest: bigint
    let afterIds: Array<number>
    try {
      await tx.query("BEGIN")
      await tx.query(`UPDATE "${pipeline.table}" SET order_status = 'CANCELLED' WHERE order_id <= 10`)
      await tx.query(`TRUNCATE "${pipeline.table}"`)
      afterIds = (await tx.query<{ order_id: number }>(`${insertOrdersSql(pipeline.table, 1001, 40, "2025-04-03 10:00:00", 60)} RETURNING order_id`)).rows
        .map((r) => r.order_id)
      xid = (await tx.query<{ xid: string }>("SELECT (txid_current() % 4294967296)::text AS xid")).rows[0]!.xid
      lowest = parseLsn((await tx.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0]!.lsn)!
      await tx.query("COMMIT")
    } finally {
      tx.release()
    }
    const highest = parseLsn((await q("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]!.lsn)!
    const laterIds = (await q(`${insertOrdersSql(pipeline.table, 1041, 25, "2025-04-03 12:00:00", 60)} RETURNING order_id`)).rows
      .map((r) => r.order_id as number)
    await q(`UPDATE "${pipeline.table}" SET order_status = 'DELIVERED' WHERE order_id IN (${afterIds![0]}, ${laterIds[0]})`)
    await q(`TRUNCATE "${pipeline.table}_other"`)

    const producer = pipeline.ok(await pipeline.run("producer"))
    pipeline.ok(await pipeline.run("consumer"))
    // A second run of each finds nothing new and changes nothing.
    await runBoth(pipeline)

    const read = await lake(pipeline)
    const expected = await source(pipeline)
    expect(expected).toHaveLength(65)
    expect(read.orders).toEqual(expected)
    expect(producer.stdout + producer.stderr).toContain("TRUNCATE of the captured table")
    expect(read.truncates).toHaveLength(1)
    const [[orderId, commitLsn, changeSeq, truncateXid, customer, noCreatedAt]] = read.truncates as [Array<string>]
    expect([orderId, changeSeq, truncateXid, customer, noCreatedAt]).toEqual(["0", "10", xid!, "null", "true"])
    expect(BigInt(commitLsn!) >= lowest!).toBe(true)
    expect(BigInt(commitLsn!) <= highest).toBe(true)
    // Its transaction: the ten updates before it (in heap order), the forty inserts after it.
    expect(read.sameCommit.map(([op]) => op)).toEqual([...Array(10).fill("update"), "truncate", ...Array(40).fill("insert")])
    expect(read.sameCommit.slice(0, 10).map(([, id]) => id).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
    expect(read.sameCommit.slice(11).map(([, id]) => id).sort((a, b) => a - b)).toEqual([...afterIds!].sort((a, b) => a - b))

    // On the topic: one marker per partition (key and value null), each order on the partition the
    // consumer's partitionOfOrder names.
    const records = await readAllRaw(endpoints.kafkaBrokers, pipeline.topic)
    const markers = records.filter((r) => r.headers["op"] === "truncate")
    expect(markers.map((m) => [m.partition, m.key, m.value, m.headers["partitions"]])).toEqual([[0, null, null, "3"], [1, null, null, "3"], [2, null, null, "3"]])
    const misplaced = records.filter((r) => r.key !== null && partitionOfOrder(Number(r.key.toString()), 3) !== r.partition)
    expect(misplaced).toHaveLength(0)

    // Spark (delta-spark) reads both tables as DuckDB does.
    spark = await startSpark()
    const sparkOrders = await spark.sql(`SELECT count(*), min(order_id), max(order_id) FROM delta.\`${pipeline.lake}\``)
    const ids = [...afterIds!, ...laterIds]
    expect(sparkOrders.rows[0]!.map(Number)).toEqual([65, Math.min(...ids), Math.max(...ids)])
    const sparkTruncates = await spark.sql(
      `SELECT order_id, CAST(commit_lsn AS STRING), change_seq FROM delta.\`${changesTableBeside(pipeline.lake)}\` WHERE op = 'truncate'`
    )
    expect(sparkTruncates.rows.map((r) => r.map(String))).toEqual([["0", commitLsn, "10"]])
  }, 240_000)

  it("alters a publication made before truncates were captured, and applies the next TRUNCATE", async () => {
    const pipeline = await logical("truncatepub")
    const pub = `${pipeline.table}_pub`
    await pipeline.pool.query(`CREATE PUBLICATION "${pub}" FOR TABLE "${pipeline.table}" WITH (publish = 'insert,update,delete')`)
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 50, "2025-05-01 10:00:00", 60))
    const producer = pipeline.ok(await pipeline.run("producer"))
    expect(producer.stdout + producer.stderr).toContain("publication altered to publish truncates")
    const { rows: [flags] } = await pipeline.pool.query<{ pubtruncate: boolean }>("SELECT pubtruncate FROM pg_publication WHERE pubname = $1", [pub])
    expect(flags!.pubtruncate).toBe(true)
    pipeline.ok(await pipeline.run("consumer"))
    expect((await lake(pipeline)).orders).toHaveLength(50)
    // One statement truncating another table and ours: one message naming both relations.
    await pipeline.pool.query(`CREATE TABLE "${pipeline.table}_other" (id int)`)
    await pipeline.pool.query(`TRUNCATE "${pipeline.table}_other", "${pipeline.table}" RESTART IDENTITY`)
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 51, 5, "2025-05-02 10:00:00", 60))
    await runBoth(pipeline)
    // RESTART IDENTITY: the new orders take the ids 1..5 again, each once.
    const expected = await source(pipeline)
    expect(expected.map((row) => JSON.parse(row)[0])).toEqual([1, 2, 3, 4, 5])
    expect((await lake(pipeline)).orders).toEqual(expected)
  }, 120_000)

  it("refuses a publication without truncates that this role does not own, printing the ALTER for its owner", async () => {
    const pipeline = await logical("truncateref")
    const pub = `${pipeline.table}_pub`
    const role = `tr_notowner_${Date.now().toString(36)}`
    await pipeline.pool.query(`CREATE PUBLICATION "${pub}" FOR TABLE "${pipeline.table}" WITH (publish = 'insert,update,delete')`)
    await adminQuery(endpoints, `CREATE ROLE ${role} LOGIN PASSWORD 'pw' REPLICATION`)
    try {
      await adminQuery(endpoints, `GRANT SELECT ON "${pipeline.table}" TO ${role}`)
      const url = new URL(endpoints.pgUrl)
      url.username = role
      url.password = "pw"
      const run = await pipeline.run("producer", { PG_URL: url.toString() })
      expect(run.code).not.toBe(0)
      // The log line is JSON: the quotes around the publication arrive escaped.
      const output = (run.stdout + run.stderr).replaceAll('\\"', '"')
      expect(output).toContain(`publication ${pub} does not publish every insert, update, delete and truncate`)
      expect(output).toContain(`ALTER PUBLICATION "${pub}" SET (publish = 'insert,update,delete,truncate')`)
      const { rows: [flags] } = await pipeline.pool.query<{ pubtruncate: boolean }>("SELECT pubtruncate FROM pg_publication WHERE pubname = $1", [pub])
      expect(flags!.pubtruncate).toBe(false)
    } finally {
      await adminQuery(endpoints, `REVOKE ALL ON "${pipeline.table}" FROM ${role}`).catch(() => undefined)
      await adminQuery(endpoints, `DROP ROLE IF EXISTS ${role}`)
    }
  }, 60_000)
})
