import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, Ref } from "effect"
import { changeHeaders, type ChangeKey, type ChangeOp, formatChangeKey, formatLsn } from "../../src/domain/Change.ts"
import type { Order } from "../../src/domain/Order.ts"
import { orderToJson } from "../../src/domain/Order.ts"
import { formatIsoMicros, parseIsoMicros } from "../../src/domain/Timestamp.ts"
import { append, makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryDeadLetters, memoryOrderStream } from "../../src/layers/memory/memoryLayers.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { lakeRewriteRebases } from "../../src/observability/metrics.ts"
import { type ChangeAt, Lake } from "../../src/services/Lake.ts"
import { compactGroup } from "../../src/table/compaction.ts"
import { type ChangeRow, changesFormat } from "../../src/table/changesTable.ts"
import { dateOf, storagePathOf } from "../../src/table/dataPaths.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { memoryLakeLayer, tableFiles } from "../support/memoryTable.ts"
import { drainOnce, order } from "./fixtures.ts"

const topicName = "orders_raw"

type Topic = Effect.Effect.Success<ReturnType<typeof makeMemoryTopic>>

interface Step {
  readonly op: ChangeOp
  readonly order: Order
  readonly key: ChangeKey
}

/** As logical capture publishes a change: the row after it (a tombstone for a delete) and its headers. */
const publishChanges = (topic: Topic, steps: ReadonlyArray<Step>) =>
  append(topic, steps.map(({ key, op, order: row }) => ({
    key: String(row.order_id),
    value: op === "delete" ? null : orderToJson(row),
    headers: {
      [changeHeaders.op]: op,
      [changeHeaders.lsn]: formatLsn(key.lsn),
      [changeHeaders.changeKey]: formatChangeKey(key),
      ...(key.phase === 1 ? { [changeHeaders.commitTime]: formatIsoMicros(row.created_at), [changeHeaders.xid]: "700" } : {})
    }
  })))

const setup = Effect.gen(function*() {
  const raw = yield* makeMemoryTopic(topicName, 3)
  const dlq = yield* makeMemoryTopic("orders_dlq")
  const objects = yield* makeMemoryObjects
  const historyObjects = yield* makeMemoryObjects
  const layer = Layer.mergeAll(memoryOrderStream(raw), memoryDeadLetters(dlq), memoryLakeLayer(objects, {}, historyObjects))
  return { raw, dlq, objects, layer, rows: tableRows(objects), history: historyOf(historyObjects) }
})

/** The history table's rows in commit order (commit_lsn, change_seq). */
const historyOf = (objects: Effect.Effect.Success<typeof makeMemoryObjects>) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const snapshot = yield* loadSnapshot()
    const rows: Array<ChangeRow & { date: string }> = []
    for (const add of snapshot.files.values()) {
      const found = yield* storage.read(storagePathOf(add.path, storage.root))
      for (const row of yield* Effect.promise(() => changesFormat.read(found!.bytes))) rows.push({ ...row, date: dateOf(add) })
    }
    return rows.sort((a, b) => (a.commit_lsn < b.commit_lsn ? -1 : a.commit_lsn > b.commit_lsn ? 1 : a.change_seq - b.change_seq))
  }).pipe(Effect.provide(memoryTableStorage(objects)), Effect.orDie)

/** The table's rows by order_id, with each row's date partition; fails on an order held twice. */
const tableRows = (objects: Effect.Effect.Success<typeof makeMemoryObjects>) =>
  tableFiles(objects).pipe(Effect.map((files) => {
    const out = new Map<number, { order: Order; date: string }>()
    for (const [path, orders] of files) {
      for (const o of orders) {
        if (out.has(o.order_id)) throw new Error(`order ${o.order_id} is in the table twice`)
        out.set(o.order_id, { order: o, date: path.split("/")[0]!.slice("date=".length) })
      }
    }
    return out
  }))

const drain = (layer: Layer.Layer<any, any>) => drainOnce(topicName, layer)

const at = (lsn: number, seq: number, epoch = 0): ChangeKey => ({ epoch, lsn: BigInt(lsn), phase: 1, seq })
const snap = (lsn: number, id: number, epoch = 0): ChangeKey => ({ epoch, lsn: BigInt(lsn), phase: 0, seq: id })

describe("changes (logical capture) applied to the table", () => {
  it.effect("inserts, updates and deletes leave each order's last state, once, in its date partition", () =>
    Effect.gen(function*() {
      const { history, layer, raw, rows } = yield* setup
      const o1 = order(1, "2025-01-15T10:00:00Z")
      const o2 = order(2, "2025-01-15T11:00:00Z")
      const o3 = order(3, "2025-01-16T09:00:00Z")
      yield* publishChanges(raw, [
        { op: "snapshot", order: o1, key: snap(100, 1) },
        { op: "snapshot", order: o2, key: snap(100, 2) },
        { op: "insert", order: o3, key: at(200, 0) }
      ])
      yield* drain(layer)
      expect([...(yield* rows).keys()].sort()).toEqual([1, 2, 3])

      // A later batch: order 1 delivered with a corrected amount, order 2 deleted, order 3 moved a day.
      const o1Delivered = { ...o1, order_status: "DELIVERED", amount: o1.amount! + 150 } as Order
      const o3Moved = { ...o3, created_at: parseIsoMicros("2025-01-17T00:30:00Z")! }
      yield* publishChanges(raw, [
        { op: "update", order: { ...o1, order_status: "PREPARING" }, key: at(300, 0) },
        { op: "update", order: o1Delivered, key: at(400, 0) },
        { op: "delete", order: o2, key: at(400, 1) },
        { op: "update", order: o3Moved, key: at(500, 0) }
      ])
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ messages: 4, written: 4, duplicates: 0, deadLettered: 0 })
      const after = yield* rows
      expect([...after.keys()].sort()).toEqual([1, 3])
      expect(after.get(1)).toEqual({ order: o1Delivered, date: "2025-01-15" })
      expect(after.get(3)).toEqual({ order: o3Moved, date: "2025-01-17" })
      // Every change once, in commit order; the delete with the row it removed (read from the table).
      const changes = yield* history
      expect(changes.map((c) => [c.order_id, c.op, c.order_status, c.date])).toEqual([
        [1, "snapshot", "PLACED", "2025-01-15"],
        [2, "snapshot", "PLACED", "2025-01-15"],
        [3, "insert", "PLACED", "2025-01-16"],
        [1, "update", "PREPARING", "2025-01-15"],
        [1, "update", "DELIVERED", "2025-01-15"],
        [2, "delete", "PLACED", "2025-01-15"],
        [3, "update", "PLACED", "2025-01-17"]
      ])
      expect(changes.find((c) => c.op === "delete")).toMatchObject({ amount: o2.amount, customer_name: o2.customer_name, created_at: o2.created_at, xid: 700 })
      expect(changes.find((c) => c.op === "snapshot")).toMatchObject({ commit_ts: null, xid: null, commit_lsn: 100n })
    }))

  it.effect("a re-delivered change (the producer re-sent after a crash) is recognised by its change key, not applied again", () =>
    Effect.gen(function*() {
      const { history, layer, raw, rows } = yield* setup
      const o1 = order(1, "2025-01-15T10:00:00Z")
      const placed = { op: "insert" as const, order: o1, key: at(100, 0) }
      const delivered = { op: "update" as const, order: { ...o1, order_status: "DELIVERED" }, key: at(200, 0) }
      yield* publishChanges(raw, [placed, delivered])
      yield* drain(layer)
      // PostgreSQL streams again from the last acknowledged commit: the old insert would undo the update.
      yield* publishChanges(raw, [placed, delivered])
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ messages: 2, written: 0, duplicates: 2 })
      expect((yield* rows).get(1)?.order.order_status).toBe("DELIVERED")
      expect((yield* history).map((c) => c.op)).toEqual(["insert", "update"])
    }))

  it.effect("a tombstone without our delete header, or a delete carrying a value, goes to the dead-letter topic", () =>
    Effect.gen(function*() {
      const { dlq, layer, raw, rows } = yield* setup
      const o1 = order(1, "2025-01-15T10:00:00Z")
      yield* publishChanges(raw, [{ op: "insert", order: o1, key: at(100, 0) }])
      yield* append(raw, [
        { key: "1", value: null },
        {
          key: "1",
          value: orderToJson(o1),
          headers: { [changeHeaders.op]: "delete", [changeHeaders.changeKey]: formatChangeKey(at(200, 0)) }
        },
        {
          key: "1",
          value: orderToJson(o1),
          headers: { [changeHeaders.op]: "upsert", [changeHeaders.changeKey]: formatChangeKey(at(300, 0)) }
        }
      ])
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ written: 1, deadLettered: 3 })
      const letters = (yield* Ref.get(dlq.log)).flat()
      expect(letters.map((l) => l.headers["dlq-reason"])).toEqual(["empty_value", "invalid_change", "invalid_change"])
      expect((yield* rows).get(1)?.order).toEqual(o1)
    }))

  it.effect("a file rewritten by a compaction between the batch's snapshot and its commit: the changes are planned again on top of it", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      const storage = memoryTableStorage(objects)
      const rows = tableRows(objects)
      const orders = [1, 2, 3, 4].map((id) => order(id, "2025-01-15T10:00:00Z"))
      yield* Effect.gen(function*() {
        const lake = yield* Lake
        const part = (from: bigint, byDate: Map<string, ReadonlyArray<Order>>, changes: Step[] = []) => ({
          topic: topicName,
          partition: 0,
          from,
          firstOffset: from,
          lastOffset: from,
          position: { nextOffset: from + BigInt(Math.max(1, changes.length)), lastCaptureKey: null, lastChangeKey: null },
          ordersByDate: byDate,
          changes: changes.map((s, i) => ({ offset: from + BigInt(i), op: s.op, orderId: s.order.order_id, order: s.op === "delete" ? null : s.order, key: s.key, commitTime: null, xid: null }))
        })
        yield* lake.commitBatch([part(0n, new Map([["2025-01-15", orders.slice(0, 2)]]))])
        yield* lake.commitBatch([part(1n, new Map([["2025-01-15", orders.slice(2)]]))])
        // Another writer merges the two files behind this Lake's back.
        yield* Effect.gen(function*() {
          const snapshot = yield* loadSnapshot()
          const files = [...snapshot.files.values()]
          yield* compactGroup(snapshot, { partitionValues: { date: dateOf(files[0]!) }, files })
        }).pipe(Effect.provide(storage))
        const rebasesBefore = (yield* Metric.value(lakeRewriteRebases)).count
        const committed = yield* lake.commitBatch([part(2n, new Map(), [
          { op: "update", order: { ...orders[0]!, order_status: "DELIVERED" }, key: at(10, 0) },
          { op: "delete", order: orders[3]!, key: at(10, 1) }
        ])])
        expect((yield* Metric.value(lakeRewriteRebases)).count).toBe(rebasesBefore + 1)
        expect(committed.rowsReplaced).toBe(2)
        expect([...committed.before.keys()].sort()).toEqual([1, 4])
      }).pipe(Effect.provide(memoryLakeLayer(objects)))
      const after = yield* rows
      expect([...after.keys()].sort()).toEqual([1, 2, 3])
      expect(after.get(1)?.order.order_status).toBe("DELIVERED")
    }))

  it.effect("a crash between the history's commit and the orders' commit: the batch again applies each change once to each table", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      const historyObjects = yield* makeMemoryObjects
      const o1 = order(1, "2025-01-15T10:00:00Z")
      const steps = [
        { offset: 0n, op: "insert" as const, orderId: 1, order: o1, key: at(100, 0), commitTime: null, xid: null },
        { offset: 1n, op: "update" as const, orderId: 1, order: { ...o1, order_status: "DELIVERED" }, key: at(200, 0), commitTime: null, xid: null }
      ]
      const batch = (from: bigint, upTo: number) => ({
        topic: topicName,
        partition: 0,
        from,
        firstOffset: from,
        lastOffset: BigInt(upTo - 1),
        position: { nextOffset: BigInt(upTo), lastCaptureKey: null, lastChangeKey: steps[upTo - 1]!.key },
        ordersByDate: new Map<string, ReadonlyArray<Order>>(),
        changes: steps.slice(0, upTo)
      })
      // The first batch lands in the history only: the orders table's commit never happens (the
      // process died): its objects are rolled back to before the batch.
      const ordersBefore = yield* Ref.get(objects)
      yield* Effect.flatMap(Lake, (lake) => lake.commitBatch([batch(0n, 1)])).pipe(Effect.provide(memoryLakeLayer(objects, {}, historyObjects)))
      yield* Ref.set(objects, ordersBefore)
      yield* Effect.gen(function*() {
        const lake = yield* Lake
        // Read from the lower of the two positions: the orders table's.
        expect((yield* lake.positions(topicName)).get(0)?.nextOffset ?? 0n).toBe(0n)
        // Redone with more messages (batches need not end where they did before).
        yield* lake.commitBatch([batch(0n, 2)])
        expect((yield* lake.positions(topicName)).get(0)?.nextOffset).toBe(2n)
      }).pipe(Effect.provide(memoryLakeLayer(objects, {}, historyObjects)))
      expect((yield* tableRows(objects)).get(1)?.order.order_status).toBe("DELIVERED")
      expect((yield* historyOf(historyObjects)).map((c) => [c.op, c.order_status])).toEqual([["insert", "PLACED"], ["update", "DELIVERED"]])
    }))

  it.effect("changes to orders spread over several small files of a date rewrite them into one file", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      const orders = [1, 2, 3, 4, 5, 6].map((id) => order(id, "2025-01-15T10:00:00Z"))
      const committed = yield* Effect.gen(function*() {
        const lake = yield* Lake
        const part = (from: bigint, byDate: Map<string, ReadonlyArray<Order>>, changes: ReadonlyArray<ChangeAt> = []) => ({
          topic: topicName, partition: 0, from, firstOffset: from, lastOffset: from,
          position: { nextOffset: from + 1n, lastCaptureKey: null, lastChangeKey: null },
          ordersByDate: byDate, changes
        })
        for (const i of [0, 1, 2]) yield* lake.commitBatch([part(BigInt(i), new Map([["2025-01-15", orders.slice(2 * i, 2 * i + 2)]]))])
        const update = (o: Order, seq: number): ChangeAt => ({ offset: 3n, op: "update", orderId: o.order_id, order: { ...o, order_status: "DELIVERED" }, key: at(10, seq), commitTime: null, xid: null })
        return yield* lake.commitBatch([part(3n, new Map(), [update(orders[0]!, 0), update(orders[2]!, 1), update(orders[4]!, 2)])])
      }).pipe(Effect.provide(memoryLakeLayer(objects)))
      expect(committed).toMatchObject({ rewritten: 3, rowsReplaced: 3 })
      const files = yield* tableFiles(objects)
      // The kept rows of the three files in one, the three new states in another.
      expect([...files.values()].map((rows) => rows.map((o) => o.order_id).sort()).sort()).toEqual([[1, 3, 5], [2, 4, 6]])
      expect([...(yield* tableRows(objects)).values()].filter((r) => r.order.order_status === "DELIVERED").map((r) => r.order.order_id).sort()).toEqual([1, 3, 5])
    }))
})
