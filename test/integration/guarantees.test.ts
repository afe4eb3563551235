/**
 * Delivery guarantees against the real PostgreSQL and Kafka: no order lost or duplicated through
 * late commits, timestamp ties, processes killed between two steps, and garbage in the topic.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { readdirSync } from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { describeIntegration } from "../support/endpoints.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { tableOffsetsCovered } from "../support/tablePosition.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { partitionEnd, produceRaw, produceRecords, readAllRaw } from "../support/rawKafka.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"
import type { SqlIdentifier } from "../../src/config/Identifiers.ts"
import { type CaptureKey, keyOf } from "../../src/domain/CaptureKey.ts"
import { captureAfterSql, captureFirstSql } from "../../src/layers/postgres/captureQuery.ts"
import { pgOrderSource } from "../../src/layers/postgres/pgOrderSource.ts"
import { OrderSource } from "../../src/services/OrderSource.ts"


describeIntegration("delivery guarantees", (endpoints) => {
  const open: Array<TestPipeline> = []
  const pipeline = async (extra: Record<string, string> = {}) => {
    const p = await makeTestPipeline(endpoints, "g", { extra })
    open.push(p)
    return p
  }
  afterAll(async () => {
    for (const p of open) await p.close()
  })

  describe("capture", () => {
    it("captures a transaction that commits after a later order was already committed", async () => {
      const p = await pipeline()
      const late = await p.pool.connect()
      try {
        // Session A starts first, so its order's created_at (its transaction start) is the older one.
        await late.query("BEGIN")
        await late.query(`INSERT INTO "${p.table}" (customer_name, amount, order_status) VALUES ('late', 10.00, 'PLACED')`)
        await new Promise((r) => setTimeout(r, 50))
        // Session B commits a newer order while A is still open.
        await p.pool.query(`INSERT INTO "${p.table}" (customer_name, amount, order_status) VALUES ('early', 20.00, 'PLACED')`)
        const whileOpen = p.ok(await p.run("producer"))
        // Polling `created_at > last` would publish B now and then skip A forever.
        expect(p.annotation(whileOpen, "capture cycle")?.["published"]).toBe(0)
        await late.query("COMMIT")
      } finally {
        late.release()
      }
      const afterCommit = p.ok(await p.run("producer"))
      expect(p.annotation(afterCommit, "capture cycle")?.["published"]).toBe(2)
      p.ok(await p.run("consumer"))
      const lake = await summariseLake(p.lake)
      expect(lake.rows).toBe(2)
      expect(lake.sum).toBe("30.00")
    })

    it("misses no order that commits while capture queries run", async () => {
      const p = await pipeline()
      // Four sessions commit single-order transactions as fast as they can while the live OrderSource
      // reads in small keyset batches. A horizon read in the same statement as the rows lost ~0.5%
      // of them here: transactions committing between the read's snapshot and pg_stat_activity.
      const stopAt = Date.now() + 8000
      const writer = async () => {
        const client = await p.pool.connect()
        try {
          while (Date.now() < stopAt) {
            await client.query("BEGIN")
            await client.query(`INSERT INTO "${p.table}" (customer_name, amount, order_status) VALUES ('w', 1, 'PLACED')`)
            await client.query("COMMIT")
          }
        } finally {
          client.release()
        }
      }
      const seen = new Set<number>()
      const reader = Effect.gen(function*() {
        const source = yield* OrderSource
        let cursor: CaptureKey | null = null
        const drain = Effect.gen(function*() {
          while (true) {
            const orders = yield* source.readAfter(cursor, 50)
            for (const o of orders) seen.add(o.order_id)
            if (orders.length > 0) cursor = keyOf(orders[orders.length - 1]!)
            if (orders.length < 50) return
          }
        })
        while (Date.now() < stopAt) yield* drain
        yield* Effect.sleep("300 millis")
        yield* drain
      }).pipe(
        Effect.provide(pgOrderSource(p.table as SqlIdentifier).pipe(
          Layer.provide(PgClient.layer({ url: Redacted.make(endpoints.pgUrl), maxConnections: 2 }))
        ))
      )
      await Promise.all([writer(), writer(), writer(), writer(), Effect.runPromise(reader)])
      const { rows } = await p.pool.query(`SELECT order_id FROM "${p.table}"`)
      const missed = rows.filter((r) => !seen.has(r.order_id)).map((r) => r.order_id)
      console.info(`[guarantees] concurrent capture: ${rows.length} committed, ${missed.length} missed`)
      expect(rows.length).toBeGreaterThan(500)
      expect(missed).toEqual([])
    })

    it("reads each batch through the capture index, not a scan and sort of the table", async () => {
      const p = await pipeline()
      await p.pool.query(`INSERT INTO "${p.table}" (customer_name, amount, order_status, created_at)
        SELECT 'c', 1, 'PLACED', TIMESTAMP '2025-01-01' + g * INTERVAL '1 second' FROM generate_series(1, 200000) g`)
      await p.pool.query(`ANALYZE "${p.table}"`)
      const plan = async (sql: string, params: ReadonlyArray<unknown>) =>
        (await p.pool.query(`EXPLAIN ${sql}`, [...params])).rows.map((r) => r["QUERY PLAN"]).join("\n")
      const after = await plan(captureAfterSql(p.table as SqlIdentifier), ["2025-01-01T10:00:00Z", 5, "2026-01-01T00:00:00Z", 5000])
      const first = await plan(captureFirstSql(p.table as SqlIdentifier), ["2026-01-01T00:00:00Z", 5000])
      for (const text of [after, first]) {
        expect(text).toContain(`${p.table}_capture_idx`)
        expect(text).not.toMatch(/Sort|Seq Scan/)
      }
    })

    it("captures every order sharing one timestamp, with a batch size of 1, across a restart", async () => {
      const p = await pipeline({ PRODUCER_BATCH_SIZE: "1" })
      await p.pool.query(`
        INSERT INTO "${p.table}" (customer_name, amount, order_status, created_at)
        SELECT 'tie ' || g, g, 'PLACED', TIMESTAMP '2025-02-01 10:00:00' FROM generate_series(1, 7) g`)
      // Killed after publishing the 4th single-order batch, before saving its cursor.
      const killed = await p.run("producer", { FOP_CRASH_AT: "producer.after-publish:4" })
      expect(killed.signal).toBe("SIGKILL")
      const rest = p.ok(await p.run("producer"))
      // The 4th is published again (its cursor was never saved), then 5 to 7.
      expect(p.annotation(rest, "capture cycle")?.["published"]).toBe(4)
      const drained = p.annotation(p.ok(await p.run("consumer")), "drained")
      expect(drained).toMatchObject({ messages: 8, written: 7, duplicates: 1 })
      const lake = await summariseLake(p.lake)
      expect(lake.rows).toBe(7)
      expect(lake.distinctIds).toBe(7)
    })
  })

  describe("the skip rule", () => {
    it("drops no valid order from another client, and skips only copies of what the table holds", async () => {
      const p = await pipeline()
      await p.pool.query(insertOrdersSql(p.table, 1, 5, "2025-06-01 10:00:00", 60))
      p.ok(await p.run("producer"))
      const published = await readAllRaw(endpoints.kafkaBrokers, p.topic)
      expect(published).toHaveLength(5)
      const first = JSON.parse(published[0]!.value!.toString()) as Record<string, unknown>
      await produceRecords(endpoints.kafkaBrokers, p.topic, [
        // kcat after newer orders: a valid order with an older key than anything published.
        { key: "9001", value: JSON.stringify({ ...first, order_id: 9001, created_at: "2025-06-01T09:00:00Z" }) },
        // Another client re-producing a published order's bytes, without our header.
        { key: published[2]!.key, value: published[2]!.value },
        // A replay of our producer's message, headers and all.
        { key: published[1]!.key, value: published[1]!.value, headers: published[1]!.headers }
      ])
      const drained = p.annotation(p.ok(await p.run("consumer")), "drained")
      expect(drained).toMatchObject({ messages: 8, written: 6, duplicates: 2, deadLettered: 0 })
      const lake = await summariseLake(p.lake)
      expect(lake.rows).toBe(6)
      expect(lake.distinctIds).toBe(6)
      // Later, the same old order once more, now that it is in the table: skipped; a new one lands.
      await produceRecords(endpoints.kafkaBrokers, p.topic, [
        { key: "9001", value: JSON.stringify({ ...first, order_id: 9001, created_at: "2025-06-01T09:00:00Z" }) },
        { key: "9002", value: JSON.stringify({ ...first, order_id: 9002, created_at: "2025-06-01T08:00:00Z" }) }
      ])
      expect(p.annotation(p.ok(await p.run("consumer")), "drained")).toMatchObject({ messages: 2, written: 1, duplicates: 1 })
      expect((await summariseLake(p.lake)).distinctIds).toBe(7)
    })
  })

  describe("two consumers on one table", () => {
    it("cannot both commit a partition: every order lands once", async () => {
      const p = await pipeline({ CONSUMER_MAX_BATCH_MESSAGES: "50" })
      await p.pool.query(insertOrdersSql(p.table, 1, 600, "2025-06-02 10:00:00", 5))
      p.ok(await p.run("producer"))
      // Different consumer groups, so Kafka hands both the whole partition: only the table stops them.
      const [a, b] = await Promise.all([
        p.run("consumer", { KAFKA_CONSUMER_GROUP: `${p.topic}_a` }),
        p.run("consumer", { KAFKA_CONSUMER_GROUP: `${p.topic}_b` })
      ])
      p.ok(a)
      p.ok(b)
      const written = [a, b].map((r) => Number(p.annotation(r, "drained")?.["written"] ?? 0))
      expect(written[0]! + written[1]!).toBe(600)
      const lake = await summariseLake(p.lake)
      expect(lake.rows).toBe(600)
      expect(lake.distinctIds).toBe(600)
      expect(await tableOffsetsCovered(p.lake, p.topic)).toBe(600n)
    })
  })

  describe("crashes", () => {
    it("a consumer killed between writing lake files and committing them leaves no duplicate", async () => {
      const p = await pipeline({ CONSUMER_MAX_BATCH_MESSAGES: "100" })
      await p.pool.query(insertOrdersSql(p.table, 1, 500, "2025-03-01 23:00:00", 30))
      p.ok(await p.run("producer"))
      const killed = await p.run("consumer", { FOP_CRASH_AT: "consumer.after-lake-files:3" })
      expect(killed.signal).toBe("SIGKILL")
      const orphaned = await summariseLake(p.lake)
      // Two committed batches; the third's file is on disk but in no version of the table.
      expect(orphaned.rows).toBe(200)
      expect(await tableOffsetsCovered(p.lake, p.topic)).toBe(200n)
      const onDisk = readdirSync(p.lake, { recursive: true }).filter((f) => String(f).endsWith(".parquet"))
      expect(onDisk.length).toBeGreaterThan(orphaned.files)
      // The restart reads bigger batches, so the orphan's name differs from what replaces it.
      const drained = p.annotation(p.ok(await p.run("consumer", { CONSUMER_MAX_BATCH_MESSAGES: "1000" })), "drained")
      expect(drained).toMatchObject({ messages: 300, written: 300, duplicates: 0 })
      const lake = await summariseLake(p.lake)
      expect(lake.rows).toBe(500)
      expect(lake.distinctIds).toBe(500)
      const { rows: [source] } = await p.pool.query(`SELECT sum(amount)::text AS sum FROM "${p.table}"`)
      expect(lake.sum).toBe(source.sum)
    })

    it("a producer killed between publishing and saving its cursor causes no duplicate in the lake", async () => {
      const p = await pipeline({ PRODUCER_BATCH_SIZE: "100" })
      await p.pool.query(insertOrdersSql(p.table, 1, 500, "2025-03-05 12:00:00", 30))
      const killed = await p.run("producer", { FOP_CRASH_AT: "producer.after-publish:2" })
      expect(killed.signal).toBe("SIGKILL")
      const rest = p.ok(await p.run("producer"))
      expect(p.annotation(rest, "capture cycle")?.["published"]).toBe(400)
      const raw = await readAllRaw(endpoints.kafkaBrokers, p.topic)
      expect(raw).toHaveLength(600) // the second batch is in the topic twice
      const drained = p.annotation(p.ok(await p.run("consumer")), "drained")
      expect(drained).toMatchObject({ messages: 600, written: 500, duplicates: 100 })
      const lake = await summariseLake(p.lake)
      expect(lake.rows).toBe(500)
      expect(lake.distinctIds).toBe(500)
    })
  })

  describe("bad input", () => {
    const valid = {
      order_id: 1, customer_name: "A", restaurant_name: "B", item: "C", amount: 12.5,
      order_status: "PLACED", created_at: "2025-04-01T10:00:00Z"
    }
    const json = (o: unknown) => Buffer.from(JSON.stringify(o))
    const catalogue: Array<[string, Buffer | null, string]> = [
      ["malformed JSON", Buffer.from("{\"order_id\": 2, "), "invalid_json"],
      ["wrong types", json({ ...valid, order_id: "three", amount: "12.50" }), "invalid_schema"],
      ["a missing field", json({ ...valid, item: undefined }), "invalid_schema"],
      ["an extra field", json({ ...valid, order_id: 4, coupon: "FREE" }), "invalid_schema"],
      ["a null order_id", json({ ...valid, order_id: null }), "null_order_id"],
      ["a negative amount", json({ ...valid, order_id: 6, amount: -1 }), "negative_amount"],
      ["an unparseable created_at", json({ ...valid, order_id: 7, created_at: "last tuesday" }), "invalid_schema"],
      ["a zone-less created_at", json({ ...valid, order_id: 8, created_at: "2025-04-01 10:00:00" }), "invalid_schema"],
      ["an empty value", Buffer.alloc(0), "empty_value"],
      ["a null value", null, "empty_value"],
      ["a 1 MB value", Buffer.alloc(1024 * 1024, 0x61), "value_too_large"],
      ["invalid UTF-8", Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), "invalid_utf8"]
    ]

    it("dead-letters every bad message with its bytes and reason, and still lands the valid ones", async () => {
      const p = await pipeline()
      // The producer creates both topics; one real order goes through it.
      await p.pool.query(`INSERT INTO "${p.table}" (customer_name, amount, order_status, created_at)
        VALUES ('real', 99.99, 'DELIVERED', TIMESTAMP '2025-04-01 09:00:00')`)
      p.ok(await p.run("producer"))
      // All into one partition, after whatever the producer put there: their order is the letters' order.
      const start = await partitionEnd(endpoints.kafkaBrokers, p.topic, 0)
      await produceRaw(endpoints.kafkaBrokers, p.topic, [
        ...catalogue.map(([, value]) => value),
        json({ ...valid, order_id: 1000, created_at: "2025-04-02T10:00:00Z" })
      ], 0)
      const consumer = p.ok(await p.run("consumer"))
      expect(p.annotation(consumer, "drained")).toMatchObject({ written: 2, deadLettered: catalogue.length })

      const letters = await readAllRaw(endpoints.kafkaBrokers, p.dlq)
      expect(letters.map((l) => l.headers["dlq-reason"])).toEqual(catalogue.map(([, , reason]) => reason))
      catalogue.forEach(([name, value], i) => {
        const letter = letters[i]!
        expect(letter.value === null ? null : Buffer.compare(letter.value, value ?? Buffer.alloc(0)) === 0, name)
          .toBe(value === null ? null : true)
        expect(letter.headers["dlq-source-topic"]).toBe(p.topic)
        expect(letter.headers["dlq-source-partition"]).toBe("0")
        expect(letter.headers["dlq-source-offset"]).toBe(String(start + i))
        expect(letter.headers["dlq-detail"]!.length).toBeGreaterThan(0)
      })
      const lake = await summariseLake(p.lake)
      expect(lake.rows).toBe(2)
      expect(lake.perDate).toEqual({ "2025-04-01": 1, "2025-04-02": 1 })
      expect(readdirSync(p.lake).sort()).toEqual(["_delta_log", "date=2025-04-01", "date=2025-04-02"])
    })
  })
})
