import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { changeHeaders, type ChangeKey, formatChangeKey, type OrderChange } from "../../src/domain/Change.ts"
import type { Order } from "../../src/domain/Order.ts"
import { partitionOfOrder } from "../../src/domain/orderPartition.ts"
import { parseIsoMicros } from "../../src/domain/Timestamp.ts"
import { truncateMarkers } from "../../src/layers/kafka/kafkaOrderPublisher.ts"
import { append, makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryDeadLetters, memoryOrderPublisher, memoryOrderStream } from "../../src/layers/memory/memoryLayers.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { OrderPublisher } from "../../src/services/OrderPublisher.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { type ChangeRow, changesFormat } from "../../src/table/changesTable.ts"
import { storagePathOf } from "../../src/table/dataPaths.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { memoryLakeLayer, tableFiles } from "../support/memoryTable.ts"
import { drainOnce, order } from "./fixtures.ts"

const topicName = "orders_raw"
const partitions = 3
const commitTime = parseIsoMicros("2025-01-15T12:00:00Z")!

const at = (lsn: number, seq: number): ChangeKey => ({ epoch: 0, lsn: BigInt(lsn), phase: 1, seq })
const insert = (o: Order, key: ChangeKey): OrderChange => ({ op: "insert", orderId: o.order_id, order: o, key, commitTime, xid: 700 })
const truncate = (key: ChangeKey): OrderChange => ({ op: "truncate", orderId: 0, order: null, key, commitTime, xid: 701 })

const setup = Effect.gen(function*() {
  const raw = yield* makeMemoryTopic(topicName, partitions)
  const dlq = yield* makeMemoryTopic("orders_dlq")
  const objects = yield* makeMemoryObjects
  const historyObjects = yield* makeMemoryObjects
  const lake = memoryLakeLayer(objects, {}, historyObjects)
  /**
   * One `--once` consumer run; with `only`, over a copy of the topic that holds only that partition's
   * messages so far (a consumer of the other partitions has not got there yet).
   */
  const drain = (only?: number) =>
    Effect.gen(function*() {
      const log = yield* Ref.get(raw.log)
      const topic = only === undefined ? raw : { ...raw, log: yield* Ref.make(log.map((messages, p) => (p === only ? messages : [])) as typeof log) }
      return yield* drainOnce(topicName, Layer.mergeAll(memoryOrderStream(topic), memoryDeadLetters(dlq), lake))
    })
  const publish = (changes: ReadonlyArray<OrderChange>) =>
    Effect.flatMap(OrderPublisher, (publisher) => publisher.publishChanges(changes)).pipe(Effect.provide(memoryOrderPublisher(raw)))
  const ids = tableFiles(objects).pipe(Effect.map((files) => [...files.values()].flat().map((o) => o.order_id).sort((a, b) => a - b)))
  const history = Effect.gen(function*() {
    const storage = yield* TableStorage
    const rows: Array<ChangeRow> = []
    for (const add of (yield* loadSnapshot()).files.values()) {
      const found = yield* storage.read(storagePathOf(add.path, storage.root))
      rows.push(...(yield* Effect.promise(() => changesFormat.read(found!.bytes))))
    }
    return rows.sort((a, b) => (a.commit_lsn < b.commit_lsn ? -1 : a.commit_lsn > b.commit_lsn ? 1 : a.change_seq - b.change_seq))
  }).pipe(Effect.provide(memoryTableStorage(historyObjects)), Effect.orDie)
  return { raw, dlq, drain, publish, ids, history }
})

/** Orders 1..n, created the same day. */
const orders = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => order(from + i, "2025-01-15T10:00:00Z"))

describe("a truncate (logical capture) applied to the table", () => {
  it.effect("empties the table at its position in every partition, keeps what came after it, and is one row of the history", () =>
    Effect.gen(function*() {
      const { drain, history, ids, publish, raw } = yield* setup
      const before = orders(1, 12)
      yield* publish(before.map((o, i) => insert(o, at(100, i))))
      yield* drain()
      expect(yield* ids).toEqual(before.map((o) => o.order_id))

      // Order 3 changed before the truncate, in this batch; 20 and 21 inserted in its transaction after it, 22 later.
      yield* publish([
        { ...insert({ ...before[2]!, order_status: "DELIVERED" }, at(200, 0)), op: "update" },
        truncate(at(300, 0)),
        insert(order(20, "2025-01-16T10:00:00Z"), at(300, 1)),
        insert(order(21, "2025-01-16T10:00:00Z"), at(300, 2)),
        insert(order(22, "2025-01-16T11:00:00Z"), at(400, 0))
      ])
      const markers = (yield* Ref.get(raw.log)).map((log) => log.filter((m) => m.headers[changeHeaders.op] === "truncate"))
      expect(markers.map((m) => m.map((x) => [x.key, x.value, x.headers[changeHeaders.partitions]]))).toEqual(
        Array.from({ length: partitions }, () => [[null, null, String(partitions)]])
      )
      const totals = yield* drain()
      expect(totals).toMatchObject({ deadLettered: 0, duplicates: 0 })
      expect(yield* ids).toEqual([20, 21, 22])
      const rows = yield* history
      // (The memory publisher sends op and change_key only: commit_ts and xid are checked through Kafka.)
      expect(rows.filter((r) => r.op === "truncate")).toEqual([{
        order_id: 0,
        op: "truncate",
        commit_lsn: 300n,
        change_seq: 0,
        commit_ts: null,
        xid: null,
        customer_name: null,
        restaurant_name: null,
        item: null,
        amount: null,
        order_status: null,
        created_at: null
      }])
      expect(rows.map((r) => [r.order_id, r.op]).slice(12)).toEqual([[3, "update"], [0, "truncate"], [20, "insert"], [21, "insert"], [22, "insert"]])

      // The producer re-sends the transaction after a crash: the markers are copies, nothing is emptied again.
      yield* publish([truncate(at(300, 0)), insert(order(20, "2025-01-16T10:00:00Z"), at(300, 1))])
      expect(yield* drain()).toMatchObject({ written: 0, duplicates: partitions + 1 })
      expect(yield* ids).toEqual([20, 21, 22])
      expect((yield* history).filter((r) => r.op === "truncate")).toHaveLength(1)
    }))

  it.effect("a partition's marker removes only its own orders: one inserted after the truncate and committed from another partition first stays", () =>
    Effect.gen(function*() {
      const { drain, ids, publish } = yield* setup
      const before = orders(1, 30)
      yield* publish(before.map((o, i) => insert(o, at(100, i))))
      yield* drain()
      const late = order(40, "2025-01-16T10:00:00Z")
      const first = partitionOfOrder(late.order_id, partitions)
      yield* publish([truncate(at(200, 0)), insert(late, at(200, 1))])
      // The partition of the late order goes first: its marker empties its orders, then the insert lands.
      yield* drain(first)
      const others = before.filter((o) => partitionOfOrder(o.order_id, partitions) !== first).map((o) => o.order_id)
      expect(yield* ids).toEqual([...others, late.order_id].sort((a, b) => a - b))
      // The other partitions' markers, later: their orders go, the late one stays.
      yield* drain()
      expect(yield* ids).toEqual([late.order_id])
    }))

  it.effect("a truncate with changes before it in the same batch and no table rows yet leaves only what followed it", () =>
    Effect.gen(function*() {
      const { drain, history, ids, publish } = yield* setup
      yield* publish([
        ...orders(1, 9).map((o, i) => insert(o, at(100, i))),
        truncate(at(200, 0)),
        insert(order(10, "2025-01-15T10:00:00Z"), at(300, 0))
      ])
      yield* drain()
      expect(yield* ids).toEqual([10])
      expect((yield* history).map((r) => r.op)).toEqual([...Array(9).fill("insert"), "truncate", "insert"])
    }))

  it.effect("a marker without a partition count, with a value, or on a partition beyond its count goes to the dead-letter topic", () =>
    Effect.gen(function*() {
      const { dlq, drain, ids, publish, raw } = yield* setup
      yield* publish(orders(1, 6).map((o, i) => insert(o, at(100, i))))
      const headers = { [changeHeaders.op]: "truncate", [changeHeaders.changeKey]: formatChangeKey(at(200, 0)) }
      yield* append(raw, [
        { key: null, value: null, partition: 0, headers },
        { key: null, value: "{}", partition: 1, headers: { ...headers, [changeHeaders.partitions]: "3" } },
        { key: null, value: null, partition: 2, headers: { ...headers, [changeHeaders.partitions]: "2" } }
      ])
      expect(yield* drain()).toMatchObject({ deadLettered: 3 })
      const letters = (yield* Ref.get(dlq.log)).flat()
      expect(letters.map((l) => [l.headers["dlq-reason"], l.headers["dlq-detail"]])).toEqual([
        ["invalid_change", `a truncate's partitions header must be the topic's partition count, it is ""`],
        ["invalid_change", "a truncate's value must be null, this one has a value"],
        ["invalid_change", "a truncate marker for a topic of 2 partitions on partition 2"]
      ])
      expect(yield* ids).toEqual([1, 2, 3, 4, 5, 6])
    }))
})

describe("a truncate on the topic", () => {
  it("is one marker per partition, each sent to its partition: key and value null, the change's headers and the partition count", () => {
    const markers = truncateMarkers(truncate(at(0x0e6bcc38, 4)), 3, "public.orders", "x")
    expect(markers).toEqual([0, 1, 2].map((partition) => ({
      key: null,
      value: null,
      partition,
      headers: {
        op: "truncate",
        lsn: "0/E6BCC38",
        commit_ts: "2025-01-15T12:00:00Z",
        xid: "701",
        change_key: "000000000E6BCC38:1:4",
        partitions: "3",
        source: "public.orders",
        captured_at: "x"
      }
    })))
  })
})
