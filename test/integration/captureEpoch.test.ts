/**
 * The capture epoch (issue 18, item 8) against the real PostgreSQL, Kafka and the consumer writing
 * the lake. A failover to a standby promoted below what the old primary had reached, or a restored
 * backup, gives the new slot LSNs below the change keys the table already holds. One server's WAL
 * only grows, so the old primary's lead is made the way it would reach the topic: the last change of
 * each partition published again, as the old slot's producer would, at an LSN far above the current
 * WAL. Then the slot is dropped behind the producer's back and the table re-snapshotted: every order
 * must equal PostgreSQL's row, and a late message of the replaced slot must not undo anything.
 */
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Effect } from "effect"
import { Partitioners } from "kafkajs"
import { afterAll, beforeAll, expect, it } from "vitest"
import { openLake, runQuery } from "../../src/analytics/lakeQuery.ts"
import { parseChangeKey } from "../../src/domain/Change.ts"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { tablePositions } from "../../src/table/positions.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { type ReadMessage, readMessages, testKafka } from "../support/kafka.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { logLines, runProgram } from "../support/pipelineProcess.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

/** Where the old primary's slot had got to: far above this server's WAL, and a safe integer. */
const oldPrimaryLsn = "00000FFF00000000"
const oldPrimaryLsnText = "FFF/0"

describeIntegration("capture epoch: a new slot below the lake's change keys", (endpoints) => {
  let p: TestPipeline
  let slot: string

  beforeAll(async () => {
    p = await makeTestPipeline(endpoints, "epoch", { extra: { CAPTURE_MODE: "logical" } })
    slot = `${p.table.toLowerCase().slice(0, 58)}_slot`
  })

  afterAll(async () => {
    if (p === undefined) return
    await p.pool.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot]).catch(() => undefined)
    await p.pool.query(`DROP PUBLICATION IF EXISTS "${p.table}_pub"`).catch(() => undefined)
    await p.close()
  })

  /** Every message of the topic so far, per partition in offset order. */
  const topicMessages = async (): Promise<Array<ReadMessage>> => {
    const admin = testKafka(endpoints.kafkaBrokers, "epoch-test").admin()
    await admin.connect()
    const total = (await admin.fetchTopicOffsets(p.topic)).reduce((n, o) => n + Number(o.high), 0)
    await admin.disconnect()
    const messages = await readMessages(endpoints.kafkaBrokers, p.topic, total)
    return messages.sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset))
  }

  /** Messages published to the partitions given, as the producer publishes them (key, value, headers). */
  const publish = async (messages: ReadonlyArray<ReadMessage>) => {
    const producer = testKafka(endpoints.kafkaBrokers, "epoch-old-primary").producer({ createPartitioner: Partitioners.DefaultPartitioner })
    await producer.connect()
    try {
      await producer.send({
        topic: p.topic,
        acks: -1,
        messages: messages.map((m) => ({ partition: m.partition, key: m.key, value: m.value, headers: { ...m.headers } }))
      })
    } finally {
      await producer.disconnect()
    }
  }

  /** The message again, as its slot's producer would publish it at `lsn` (16 hex digits) instead. */
  const atLsn = (m: ReadMessage, lsn: string, lsnText: string, value = m.value): ReadMessage => ({
    ...m,
    value,
    headers: { ...m.headers, change_key: m.headers["change_key"]!.replace(/[0-9A-F]{16}/, lsn), lsn: lsnText }
  })

  const source = async () =>
    (await p.pool.query<{ row: string }>(
      `SELECT json_build_array(order_id, customer_name, item, amount::text, order_status,
              to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.US') || '+00')::text AS row
       FROM "${p.table}" ORDER BY order_id`
    )).rows.map((r) => JSON.stringify(JSON.parse(r.row)))

  const lake = () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const db = yield* openLake(p.lake)
      const rows = yield* runQuery(db, `SELECT json_array(order_id, customer_name, item, amount::VARCHAR, order_status,
        strftime(created_at, '%Y-%m-%d %H:%M:%S.%f') || '+00')::VARCHAR FROM orders ORDER BY order_id`)
      return rows.rows.map((r) => JSON.stringify(JSON.parse(r[0]!)))
    })))

  const storedLsns = () =>
    loadSnapshot().pipe(
      Effect.map((snapshot) => [...tablePositions(snapshot, p.topic).values()].map((position) => position.lastChangeKey?.lsn)),
      Effect.provide(fileTableStorage(p.lake)),
      Effect.runPromise
    )

  it("after a failover below the stored keys and --resnapshot, orders equal PostgreSQL; the old slot's late changes are dropped", async () => {
    await p.pool.query(insertOrdersSql(p.table, 1, 60, "2025-04-01 09:00:00", 45))
    p.ok(await p.run("producer"))
    p.ok(await p.run("consumer"))
    expect(await lake()).toEqual(await source())

    // The old primary got further than the standby will: its last change of each partition, at a
    // higher LSN, reached the topic and the table before the failover.
    const first = await topicMessages()
    const lastOfEach = [...new Map(first.map((m) => [m.partition, m])).values()]
    await publish(lastOfEach.map((m) => atLsn(m, oldPrimaryLsn, oldPrimaryLsnText)))
    p.ok(await p.run("consumer"))
    const stored = await storedLsns()
    expect(stored.length).toBe(lastOfEach.length)
    for (const lsn of stored) expect(lsn).toBe(BigInt(`0x${oldPrimaryLsn}`))

    // The failover: the slot is gone (the standby never had it), and writes go on meanwhile.
    await p.pool.query("SELECT pg_drop_replication_slot($1)", [slot])
    await p.pool.query(`UPDATE "${p.table}" SET order_status = 'DELIVERED' WHERE order_id <= 20`)
    await p.pool.query(insertOrdersSql(p.table, 61, 10, "2025-04-02 09:00:00", 45))
    const stopped = await p.run("producer")
    expect(stopped.code).not.toBe(0)
    expect(stopped.stdout + stopped.stderr).toContain("--resnapshot")
    p.ok(await runProgram("producer", ["--once", "--resnapshot"], p.env))

    // The new slot streams on, its LSNs all below the old primary's.
    await p.pool.query(`UPDATE "${p.table}" SET order_status = 'CANCELLED', amount = amount + 1.10 WHERE order_id % 7 = 0`)
    await p.pool.query(`DELETE FROM "${p.table}" WHERE order_id % 9 = 0`)
    await p.pool.query(insertOrdersSql(p.table, 71, 5, "2025-04-03 09:00:00", 45))
    p.ok(await p.run("producer"))
    // The old slot's producer, still running somewhere, publishes late: order 1 back to PLACED, above
    // every LSN so far. It is of the replaced slot: stale.
    const order1 = first.find((m) => m.key === "1")!
    const placed = JSON.stringify({ ...JSON.parse(order1.value!), order_status: "PLACED" })
    await publish([atLsn(order1, "00000FFF10000000", "FFF/10000000", placed)])
    const consumed = p.ok(await p.run("consumer"))

    const expected = await source()
    expect(await lake()).toEqual(expected)
    expect(expected.length).toBe(75 - 7)
    const staleWarning = logLines(consumed).find((l) => String(l["message"]).startsWith("changes of an older capture epoch dropped"))
    expect(staleWarning?.["annotations"]).toMatchObject({ stale: 1 })

    // Two slots, two epochs, the new one above; the run after the re-snapshot kept its slot's, as the state file does.
    const epochOf = (m: ReadMessage) => parseChangeKey(m.headers["change_key"])!.epoch
    const [oldEpoch, ...others] = new Set(first.map(epochOf))
    expect(others).toEqual([])
    const epochs = new Set((await topicMessages()).map(epochOf))
    expect(epochs.size).toBe(2)
    const newEpoch = [...epochs].find((e) => e !== oldEpoch)!
    expect(newEpoch).toBeGreaterThan(oldEpoch!)
    const state = JSON.parse(readFileSync(join(dirname(p.env["STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION"]!), `${slot}.logical.json`), "utf8"))
    expect(state.epoch).toBe(newEpoch)
  }, 120_000)
})
