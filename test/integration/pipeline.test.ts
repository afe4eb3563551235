/**
 * The pipeline end to end against the real PostgreSQL and Kafka, with the lake read back by DuckDB:
 * producer and consumer run as separate processes (`--once`), restarted between rounds.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ordersTableDdl } from "../../scripts/stack/sql.ts"
import { backlogHeader } from "../../src/services/OrderStream.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { deleteTopics, type ReadMessage, readMessages } from "../support/kafka.ts"
import { uniqueName } from "../support/names.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { logLines, pipelineEnv, type ProgramRun, runProgram } from "../support/pipelineProcess.ts"

describeIntegration("pipeline end to end", (endpoints) => {
  const roll = uniqueName("e2e")
  const table = `${roll}_orders`
  const topic = `${roll}_food_orders_raw`
  const stateDir = mkdtempSync(join(tmpdir(), "fop-e2e-"))
  const env = pipelineEnv({
    pgUrl: endpoints.pgUrl,
    kafkaBrokers: endpoints.kafkaBrokers,
    roll,
    stateDir,
    // Small batches, so the 3,000 orders cross many batch boundaries on both sides.
    extra: { PRODUCER_BATCH_SIZE: "700", CONSUMER_MAX_BATCH_MESSAGES: "1000" }
  })
  const lake = env["DATALAKE_PATH"]!
  const pool = new pg.Pool({ connectionString: endpoints.pgUrl, max: 2 })

  /** What PostgreSQL holds, summarised the way the lake is. */
  const sourceSummary = async () => {
    const { rows: [totals] } = await pool.query(`
      SELECT count(*)::int AS rows, sum(amount)::text AS sum,
             to_char(min(created_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS min_created,
             to_char(max(created_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS max_created
      FROM "${table}"`)
    const { rows: perDate } = await pool.query(
      `SELECT to_char(created_at, 'YYYY-MM-DD') AS date, count(*)::int AS n FROM "${table}" GROUP BY 1 ORDER BY 1`
    )
    return { ...totals, perDate: Object.fromEntries(perDate.map((r) => [r.date, r.n])) }
  }

  /** The exact JSON the contract promises for each row, built here from SQL, independently of src/. */
  const expectedMessages = async () => {
    const { rows } = await pool.query(`
      SELECT order_id, customer_name, restaurant_name, item, amount::text AS amount, order_status,
             to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at
      FROM "${table}" ORDER BY created_at, order_id`)
    return rows.map((r) => ({
      key: String(r.order_id),
      value: JSON.stringify({
        order_id: r.order_id,
        customer_name: r.customer_name,
        restaurant_name: r.restaurant_name,
        item: r.item,
        amount: Number(r.amount),
        order_status: r.order_status,
        created_at: r.created_at
      })
    }))
  }

  /**
   * The messages in capture order, once each partition is checked to hold its orders in capture
   * order (the topic has several partitions; the order across them is not defined).
   */
  const inCaptureOrder = (messages: ReadonlyArray<ReadMessage>, expected: ReadonlyArray<{ key: string }>) => {
    const rank = new Map(expected.map((m, i) => [m.key, i]))
    const rankOf = (m: ReadMessage) => rank.get(m.key ?? "") ?? -1
    for (const partition of new Set(messages.map((m) => m.partition))) {
      const ranks = messages.filter((m) => m.partition === partition).map(rankOf)
      expect(ranks).toEqual([...ranks].sort((a, b) => a - b))
    }
    return [...messages].sort((a, b) => rankOf(a) - rankOf(b))
  }

  const runBoth = async (label: string) => {
    const producer = await runProgram("producer", ["--once"], env)
    expect(producer.code, producer.stderr + producer.stdout).toBe(0)
    const consumer = await runProgram("consumer", ["--once"], env)
    expect(consumer.code, consumer.stderr + consumer.stdout).toBe(0)
    report(label, producer, consumer)
    return { producer, consumer }
  }

  const report = (label: string, producer: ProgramRun, consumer: ProgramRun) => {
    const cycle = logLines(producer).find((l) => l["message"] === "capture cycle")?.["annotations"]
    const drained = logLines(consumer).find((l) => l["message"] === "drained")?.["annotations"]
    console.info(`[e2e] ${label}: producer ${producer.ms} ms ${JSON.stringify(cycle)}; consumer ${consumer.ms} ms ${JSON.stringify(drained)}`)
  }

  beforeAll(async () => {
    await pool.query(ordersTableDdl(table))
    // Three UTC dates: 2025-01-15 23:00 + 3,000 x 45 s ends on 2025-01-17 at 12:30.
    await pool.query(insertOrdersSql(table, 1, 3000, "2025-01-15 23:00:00", 45))
  })

  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => undefined)
    await pool.end()
    await deleteTopics(endpoints.kafkaBrokers, [topic, `${roll}_food_orders_dlq`]).catch(() => undefined)
    rmSync(stateDir, { recursive: true, force: true })
  })

  describe("first run", () => {
    it("publishes every order once, as the exact JSON, keyed by order_id", async () => {
      const { producer } = await runBoth("round 1")
      const cycle = logLines(producer).find((l) => l["message"] === "capture cycle")!["annotations"] as Record<string, unknown>
      expect(cycle["published"]).toBe(3000)
      expect(cycle["batches"]).toBe(5)

      const expected = await expectedMessages()
      const read = await readMessages(endpoints.kafkaBrokers, topic, expected.length)
      // Keyed by order_id: spread over the topic's 3 partitions, each in capture order.
      expect(new Set(read.map((m) => m.partition)).size).toBe(3)
      const messages = inCaptureOrder(read, expected)
      expect(messages.map((m) => ({ key: m.key, value: m.value }))).toEqual(expected)
      expect(messages[0]!.headers["op"]).toBe("c")
      // In each batch that filled its read (700), the last message of each partition tells that
      // partition's consumer more follows.
      const flagged = messages.flatMap((m, i) => (m.headers[backlogHeader] === "true" ? [i] : []))
      const lastOfEachPartition = [0, 1, 2, 3].flatMap((batch) =>
        [0, 1, 2].map((p) => Math.max(...messages.flatMap((m, i) => (m.partition === p && Math.floor(i / 700) === batch ? [i] : []))))
      ).sort((a, b) => a - b)
      expect(flagged).toEqual(lastOfEachPartition)
      expect(flagged).toContain(699)
      // Nothing beyond them: a second read with one more wanted must time out.
      await expect(readMessages(endpoints.kafkaBrokers, topic, expected.length + 1, 3000)).rejects.toThrow(/read 3000 of 3001/)
    })

    it("lands the same orders in the lake, typed for analysts", async () => {
      const source = await sourceSummary()
      const lakeNow = await summariseLake(lake)
      expect(Object.keys(source.perDate)).toHaveLength(3)
      expect(lakeNow.rows).toBe(3000)
      expect(lakeNow.distinctIds).toBe(3000)
      expect(lakeNow.perDate).toEqual(source.perDate)
      expect(lakeNow.sum).toBe(source.sum)
      expect(lakeNow.minCreated).toBe(source.min_created)
      expect(lakeNow.maxCreated).toBe(source.max_created)
      expect(lakeNow.types).toEqual({
        order_id: "BIGINT",
        customer_name: "VARCHAR",
        restaurant_name: "VARCHAR",
        item: "VARCHAR",
        amount: "DECIMAL(10,2)",
        order_status: "VARCHAR",
        created_at: "TIMESTAMP WITH TIME ZONE",
        date: "DATE"
      })
      // The reference layout, plus the table's log beside the partitions.
      const dirs = readdirSync(lake).filter((d) => d !== "_delta_log").sort()
      expect(readdirSync(lake)).toContain("_delta_log")
      expect(dirs).toEqual(Object.keys(source.perDate).map((d) => `date=${d}`))
      for (const dir of dirs) {
        for (const file of readdirSync(join(lake, dir))) expect(file).toMatch(/^part-.*\.parquet$/)
      }
      console.info(`[e2e] lake after round 1: ${lakeNow.rows} rows, ${lakeNow.files} files, ${dirs.length} partitions`)
    })
  })

  describe("second run, after restarting both programs", () => {
    it("adds only the new orders", async () => {
      await pool.query(insertOrdersSql(table, 3001, 1000, "2025-01-18 06:00:00", 30))
      const { producer, consumer } = await runBoth("round 2")
      const cycle = logLines(producer).find((l) => l["message"] === "capture cycle")!["annotations"] as Record<string, unknown>
      expect(cycle["published"]).toBe(1000)
      const drained = logLines(consumer).find((l) => l["message"] === "drained")!["annotations"] as Record<string, unknown>
      expect(drained["written"]).toBe(1000)
      expect(drained["duplicates"]).toBe(0)

      const source = await sourceSummary()
      const lakeNow = await summariseLake(lake)
      expect(lakeNow.rows).toBe(4000)
      expect(lakeNow.distinctIds).toBe(4000)
      expect(lakeNow.perDate).toEqual(source.perDate)
      expect(lakeNow.sum).toBe(source.sum)
      expect(lakeNow.maxCreated).toBe(source.max_created)
      const expected = await expectedMessages()
      const messages = inCaptureOrder(await readMessages(endpoints.kafkaBrokers, topic, expected.length), expected)
      expect(messages.map((m) => m.value)).toEqual(expected.map((m) => m.value))
      console.info(`[e2e] lake after round 2: ${lakeNow.rows} rows, ${lakeNow.files} files, ${Object.keys(lakeNow.perDate).length} partitions`)
    })

    it("does nothing when run again with nothing new", async () => {
      const { producer, consumer } = await runBoth("round 3")
      expect((logLines(producer).find((l) => l["message"] === "capture cycle")!["annotations"] as Record<string, unknown>)["published"]).toBe(0)
      expect((logLines(consumer).find((l) => l["message"] === "drained")!["annotations"] as Record<string, unknown>)["messages"]).toBe(0)
      expect((await summariseLake(lake)).rows).toBe(4000)
    })
  })
})
