import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Ref, TestClock } from "effect"
import type { Order } from "../../src/domain/Order.ts"
import { orderToJson } from "../../src/domain/Order.ts"
import { append, makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryAssignment, memoryDeadLetters, memoryOrderStream } from "../../src/layers/memory/memoryLayers.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { deltaLake } from "../../src/layers/lake/deltaLake.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { consume } from "../../src/programs/consumer/consume.ts"
import type { FlushPolicy } from "../../src/programs/consumer/flushPolicy.ts"
import { StorageError } from "../../src/services/errors.ts"
import { type Assignment, backlogHeader, captureKeyHeader, captureKeyText } from "../../src/services/OrderStream.ts"
import { formatIsoMicros } from "../../src/domain/Timestamp.ts"
import { Lake } from "../../src/services/Lake.ts"
import { drainOnce, order } from "./fixtures.ts"
import { memoryLakeLayer, memoryTableSettings, tableFiles } from "../support/memoryTable.ts"

const topicName = "orders_raw"

const setup = Effect.gen(function*() {
  const raw = yield* makeMemoryTopic(topicName)
  const dlq = yield* makeMemoryTopic("orders_dlq")
  const objects = yield* makeMemoryObjects
  const files = tableFiles(objects)
  const position = Effect.gen(function*() {
    const positions = yield* Effect.flatMap(Lake, (lake) => lake.positions(topicName)).pipe(Effect.provide(memoryLakeLayer(objects)))
    return positions.get(0)
  }).pipe(Effect.orDie)
  const layer = Layer.mergeAll(
    memoryOrderStream(raw),
    memoryDeadLetters(dlq),
    memoryLakeLayer(objects)
  )
  return { raw, dlq, objects, files, position, layer }
})

/** As our producer publishes: with the capture-key header. */
const fromProducer = (topic: Effect.Effect.Success<ReturnType<typeof makeMemoryTopic>>, orders: ReadonlyArray<Order>) =>
  append(topic, orders.map((o) => ({
    key: String(o.order_id),
    value: orderToJson(o),
    headers: { [captureKeyHeader]: captureKeyText(formatIsoMicros(o.created_at), o.order_id) }
  })))

const publish = (topic: Effect.Effect.Success<ReturnType<typeof makeMemoryTopic>>, values: ReadonlyArray<string>) =>
  append(topic, values.map((value) => ({ key: null, value })))

const drain = (layer: Layer.Layer<any, any>) => drainOnce(topicName, layer)

const lakeIds = (files: Effect.Effect<ReadonlyMap<string, ReadonlyArray<Order>>>) =>
  files.pipe(Effect.map((all) => {
    const out: Record<string, Array<number>> = {}
    for (const [path, orders] of all) (out[path.split("/")[0]!] ??= []).push(...orders.map((o) => o.order_id))
    return out
  }))

describe("consumer", () => {
  it.effect("cleans, partitions by UTC date and commits the position with the files", () =>
    Effect.gen(function*() {
      const { raw, dlq, files, position, layer } = yield* setup
      yield* publish(raw, [
        orderToJson(order(1, "2025-01-15T23:59:59Z")),
        orderToJson(order(2, "2025-01-16T00:00:00Z")),
        JSON.stringify({ ...JSON.parse(orderToJson(order(3, "2025-01-16T01:00:00Z"))), order_id: null }),
        orderToJson(order(4, "2025-01-16T02:00:00Z", -100)),
        "not json",
        orderToJson(order(5, "2025-01-17T02:00:00+05:00"))
      ])
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ messages: 6, written: 3, deadLettered: 3, duplicates: 0, files: 2 })
      expect(yield* lakeIds(files)).toEqual({ "date=2025-01-15": [1], "date=2025-01-16": [2, 5] })
      const letters = (yield* Ref.get(dlq.log)).flat()
      expect(letters.map((l) => l.headers["dlq-reason"])).toEqual(["null_order_id", "negative_amount", "invalid_json"])
      expect(new TextDecoder().decode(letters[2]!.value!)).toBe("not json")
      // Headerless messages (another client's) carry no capture key to remember.
      expect(yield* position).toEqual({ nextOffset: 6n, lastCaptureKey: null, lastChangeKey: null })
    }))

  it.effect("skips orders re-published by a producer that crashed before saving its cursor", () =>
    Effect.gen(function*() {
      const { raw, files, position, layer } = yield* setup
      const first = [order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-15T11:00:00Z")]
      yield* fromProducer(raw, first)
      yield* drain(layer)
      yield* fromProducer(raw, [...first, order(3, "2025-01-15T12:00:00Z")])
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ messages: 3, written: 1, duplicates: 2 })
      const all = [...(yield* files).values()].flat().map((o) => o.order_id).sort()
      expect(all).toEqual([1, 2, 3])
      expect((yield* position)?.lastCaptureKey?.order_id).toBe(3)
    }))

  it.effect("never skips a valid order from another client, however old its key", () =>
    Effect.gen(function*() {
      const { raw, files, layer } = yield* setup
      yield* fromProducer(raw, [order(1, "2025-01-15T10:00:00Z"), order(5, "2025-01-15T12:00:00Z")])
      yield* drain(layer)
      // kcat, a replay tool, a re-publish without our header: keys older than the producer's last.
      yield* publish(raw, [
        orderToJson(order(3, "2025-01-15T11:00:00Z")),
        // Order 1 with another amount is not the row the table holds.
        orderToJson(order(1, "2025-01-15T10:00:00Z", 999))
      ])
      // A header that does not name the order in the value is not ours either.
      yield* append(raw, [{ key: "4", value: orderToJson(order(4, "2025-01-15T09:00:00Z")), headers: { [captureKeyHeader]: "2025-01-15T13:00:00Z#9" } }])
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ messages: 3, written: 3, duplicates: 0, deadLettered: 0 })
      expect([...(yield* files).values()].flat().map((o) => o.order_id)).toEqual([1, 5, 3, 1, 4])
    }))

  it.effect("skips another client's copy only of a row the table (or the batch) already holds", () =>
    Effect.gen(function*() {
      const { raw, files, layer } = yield* setup
      yield* fromProducer(raw, [order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-16T10:00:00Z")])
      yield* drain(layer)
      yield* publish(raw, [
        orderToJson(order(2, "2025-01-16T10:00:00Z")),
        orderToJson(order(7, "2025-01-15T10:30:00Z")),
        orderToJson(order(7, "2025-01-15T10:30:00Z"))
      ])
      // Our producer re-publishing order 1 after a crash: skipped on its header alone.
      yield* fromProducer(raw, [order(1, "2025-01-15T10:00:00Z")])
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ messages: 4, written: 1, duplicates: 3 })
      expect([...(yield* files).values()].flat().map((o) => o.order_id).sort()).toEqual([1, 2, 7])
    }))

  it.effect("does not move the position while the lake cannot be written, and recovers", () =>
    Effect.gen(function*() {
      const { raw, files, position, layer } = yield* setup
      yield* publish(raw, [orderToJson(order(1, "2025-01-15T10:00:00Z"))])
      const writable = yield* Ref.make(false)
      const flakyLake = Layer.effect(Lake, Effect.gen(function*() {
        const real = yield* Lake
        return Lake.of({
          ...real,
          commitBatch: (batch) =>
            Effect.flatMap(Ref.get(writable), (ok) =>
              ok ? real.commitBatch(batch) : Effect.fail(new StorageError({ path: "/lake", operation: "write", cause: "EACCES" }))
            )
        })
      })).pipe(Layer.provide(layer))
      const fiber = yield* Effect.fork(drain(Layer.merge(layer, flakyLake)))
      yield* TestClock.adjust("30 seconds")
      expect(yield* position).toBeUndefined()
      expect((yield* files).size).toBe(0)
      yield* Ref.set(writable, true)
      yield* TestClock.adjust("30 seconds")
      yield* Fiber.join(fiber)
      expect((yield* position)?.nextOffset).toBe(1n)
      expect((yield* files).size).toBe(1)
    }))

  it.effect("a second consumer on the same partition cannot commit over the first", () =>
    Effect.gen(function*() {
      const { raw, files, position, objects, layer } = yield* setup
      yield* publish(raw, [orderToJson(order(1, "2025-01-15T10:00:00Z"))])
      // Two consumers, each with its own view of the table, read the same batch.
      const other = Layer.mergeAll(memoryOrderStream(raw), memoryDeadLetters(yield* makeMemoryTopic("dlq2")), memoryLakeLayer(objects))
      const [a, b] = yield* Effect.all([drain(layer), drain(other)], { concurrency: 2 })
      expect(a.written + b.written).toBe(1)
      expect([...(yield* files).values()].flat().map((o) => o.order_id)).toEqual([1])
      expect((yield* position)?.nextOffset).toBe(1n)
    }))

  describe("several partitions", () => {
    const flush: FlushPolicy = { maxMessages: 1000, maxBytes: 1024 * 1024, linger: "20 millis", backlogLinger: "1 second" }
    const orders = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => order(from + i, `2025-01-15T10:${String(Math.floor((from + i) / 60)).padStart(2, "0")}:${String((from + i) % 60).padStart(2, "0")}Z`))
    const idsIn = (files: Effect.Effect<ReadonlyMap<string, ReadonlyArray<Order>>>) =>
      files.pipe(Effect.map((all) => [...all.values()].flat().map((o) => o.order_id).sort((a, b) => a - b)))
    const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
    /** One partition's part of a lake batch: these orders at offsets `from`, ... */
    const part = (partition: number, from: bigint, ids: ReadonlyArray<number>) => ({
      topic: topicName,
      partition,
      from,
      firstOffset: from,
      lastOffset: from + BigInt(ids.length) - 1n,
      position: { nextOffset: from + BigInt(ids.length), lastCaptureKey: null, lastChangeKey: null },
      ordersByDate: new Map([["2025-01-15", ids.map((id) => order(id, "2025-01-15T10:00:00Z"))]])
    })
    const positionsOf = (objects: Effect.Effect.Success<typeof makeMemoryObjects>) =>
      Effect.flatMap(Lake, (lake) => lake.positions(topicName)).pipe(Effect.provide(memoryLakeLayer(objects)), Effect.orDie)
    /** The real Lake, counting the commits it was refused. */
    const countingConflicts = (objects: Effect.Effect.Success<typeof makeMemoryObjects>, conflicts: Ref.Ref<number>) =>
      Layer.effect(Lake, Effect.map(Lake, (real) =>
        Lake.of({
          ...real,
          commitBatch: (parts) => real.commitBatch(parts).pipe(Effect.tapErrorTag("CommitConflict", () => Ref.update(conflicts, (n) => n + 1)))
        }))).pipe(Layer.provide(memoryLakeLayer(objects)))

    it.effect("one lake batch spans every partition: one version with each partition's files and position", () =>
      Effect.gen(function*() {
        const raw = yield* makeMemoryTopic(topicName, 3)
        const objects = yield* makeMemoryObjects
        yield* fromProducer(raw, orders(1, 30))
        const perPartition = (yield* Ref.get(raw.log)).map((messages) => messages.length)
        expect(perPartition.filter((n) => n > 0)).toHaveLength(3)
        const layer = Layer.mergeAll(memoryOrderStream(raw), memoryDeadLetters(yield* makeMemoryTopic("dlq")), memoryLakeLayer(objects))
        const totals = yield* drain(layer)
        expect(totals).toMatchObject({ messages: 30, written: 30, files: 3 })
        // Files named per topic-partition-offset range, all in one commit.
        const files = yield* tableFiles(objects)
        expect([...files.keys()].map((path) => path.match(/part-orders_raw-(\d+)-/)?.[1]).sort()).toEqual(["0", "1", "2"])
        expect(yield* idsIn(tableFiles(objects))).toEqual(range(1, 30))
        const positions = yield* positionsOf(objects)
        expect([...positions].map(([p, position]) => [p, position.nextOffset]).sort()).toEqual(perPartition.map((n, p) => [p, BigInt(n)]))
        // Version 0 creates the table; the batch is version 1.
        expect([...(yield* Ref.get(objects)).keys()].filter((k) => k.includes("_delta_log/") && k.endsWith(".json"))).toHaveLength(2)
      }))

    it.effect("a commit is refused whole when any of its partitions moved; other partitions never conflict", () =>
      Effect.scoped(Effect.gen(function*() {
        const objects = yield* makeMemoryObjects
        const a = Context.get(yield* Layer.build(memoryLakeLayer(objects)), Lake)
        const b = Context.get(yield* Layer.build(memoryLakeLayer(objects)), Lake)
        // B (the partition's new owner) commits partition 1; A still holds a batch read before that.
        yield* b.commitBatch([part(1, 0n, [11])])
        const refused = yield* Effect.flip(a.commitBatch([part(0, 0n, [1]), part(1, 0n, [12])]))
        expect(refused._tag).toBe("CommitConflict")
        expect(refused.message + String((refused as { detail?: string }).detail)).toContain("partition 1")
        expect(yield* idsIn(tableFiles(objects))).toEqual([11])
        // Nothing of A's refused batch is left behind, in the table or beside it.
        expect([...(yield* Ref.get(objects)).keys()].filter((k) => k.endsWith(".parquet"))).toHaveLength(1)
        // A commit of partitions nobody else moved goes after B's, blind.
        yield* a.commitBatch([part(0, 0n, [1]), part(2, 0n, [21])])
        expect(yield* idsIn(tableFiles(objects))).toEqual([1, 11, 21])
        const positions = yield* a.positions(topicName)
        expect([...positions].map(([p, position]) => [p, position.nextOffset]).sort()).toEqual([[0, 1n], [1, 1n], [2, 1n]])
      })))

    it.effect("a consumer idle past the log's retention while another commits and cleans up lands its commit at the head", () =>
      Effect.scoped(Effect.gen(function*() {
        // Real time: the retention is measured against commit times and Date.now().
        const wait = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))
        const objects = yield* makeMemoryObjects
        const settings = { retention: "300 millis", checkpointInterval: 2 } as const
        const a = Context.get(yield* Layer.build(memoryLakeLayer(objects, settings)), Lake)
        const b = Context.get(yield* Layer.build(memoryLakeLayer(objects, settings)), Lake)
        yield* a.setMaintenance(false)
        yield* a.commitBatch([part(0, 0n, [1])])
        // A goes quiet; B commits on, checkpoints every 2 versions and cleans the log up behind the
        // retention, until the version after A's snapshot is gone.
        let next = 0n
        for (let round = 0; round < 3; round++) {
          yield* wait(400)
          for (let i = 0; i < 2; i++) {
            yield* b.commitBatch([part(1, next, [100 + Number(next)])])
            next += 1n
          }
        }
        yield* wait(100)
        const log = [...(yield* Ref.get(objects)).keys()].filter((k) => /_delta_log\/\d{20}\.json$/.test(k))
        expect(log.some((k) => k.endsWith(`${"2".padStart(20, "0")}.json`)), "the version after A's snapshot was cleaned up").toBe(false)
        // A's next batch must land where readers look, not in the freed slot behind the checkpoint.
        const committed = yield* a.commitBatch([part(0, 1n, [2])])
        expect(committed.version).toBeGreaterThan(6)
        expect(yield* idsIn(tableFiles(objects))).toEqual([1, 2, 100, 101, 102, 103, 104, 105])
      })))

    it.effect("a partition that comes back after a rebalance resumes from the table, not from memory", () =>
      Effect.gen(function*() {
        const raw = yield* makeMemoryTopic(topicName, 2)
        const objects = yield* makeMemoryObjects
        const assignedA = yield* memoryAssignment(raw, [0, 1])
        const assignedB = yield* Ref.make<Assignment>({ generation: 1, partitions: new Set() })
        const conflicts = yield* Ref.make(0)
        const consumer = (assigned: Ref.Ref<Assignment>, dlq: string) =>
          Effect.gen(function*() {
            const layer = Layer.mergeAll(memoryOrderStream(raw, assigned), memoryDeadLetters(yield* makeMemoryTopic(dlq)), countingConflicts(objects, conflicts))
            return yield* consume({ topic: topicName, pollWait: "50 millis", flush, once: false }).pipe(Effect.provide(layer), Effect.fork)
          })
        const reassign = (ref: Ref.Ref<Assignment>, partitions: ReadonlyArray<number>) =>
          Ref.update(ref, (a) => ({ generation: a.generation + 1, partitions: new Set(partitions) }))
        const a = yield* consumer(assignedA, "dlq-a")
        const b = yield* consumer(assignedB, "dlq-b")
        yield* fromProducer(raw, orders(1, 20))
        yield* TestClock.adjust("500 millis")
        expect(yield* idsIn(tableFiles(objects))).toEqual(range(1, 20))
        // Partition 1 moves to B, which writes more of it; then it comes back to A.
        yield* reassign(assignedA, [0])
        yield* reassign(assignedB, [1])
        yield* TestClock.adjust("100 millis")
        yield* fromProducer(raw, orders(21, 40))
        yield* TestClock.adjust("500 millis")
        expect(yield* idsIn(tableFiles(objects))).toEqual(range(1, 40))
        yield* reassign(assignedB, [])
        yield* reassign(assignedA, [0, 1])
        yield* fromProducer(raw, orders(41, 60))
        yield* TestClock.adjust("500 millis")
        expect(yield* idsIn(tableFiles(objects))).toEqual(range(1, 60))
        // A never tried to commit partition 1 from its own, stale, position.
        expect(yield* Ref.get(conflicts)).toBe(0)
        const ends = (yield* Ref.get(raw.log)).map((messages) => BigInt(messages.length))
        const positions = yield* positionsOf(objects)
        expect(ends.map((_, p) => positions.get(p)?.nextOffset)).toEqual(ends)
        yield* Fiber.interrupt(a)
        yield* Fiber.interrupt(b)
      }))

    it.effect("only the owner of partition 0 compacts the table; the role follows the assignment", () =>
      Effect.gen(function*() {
        const raw = yield* makeMemoryTopic(topicName, 2)
        const objects = yield* makeMemoryObjects
        const merges = { a: 0, b: 0 }
        /** The real table on the shared objects, counting the merged files this consumer writes. */
        const compactingLake = (who: "a" | "b") =>
          deltaLake({
            ...memoryTableSettings,
            maintenance: { targetFileBytes: 1024 * 1024, fanIn: 2, idleMs: 3_600_000, vacuumInterval: "1 hour" }
          }).pipe(Layer.provide(Layer.effect(TableStorage, Effect.map(TableStorage, (storage) =>
            TableStorage.of({
              ...storage,
              write: (path, bytes) => {
                if (path.includes("part-compacted-")) merges[who] += 1
                return storage.write(path, bytes)
              }
            }))).pipe(Layer.provide(memoryTableStorage(objects)))))
        const assignedA = yield* memoryAssignment(raw, [0])
        const assignedB = yield* memoryAssignment(raw, [1])
        const consumer = (who: "a" | "b", assigned: Ref.Ref<Assignment>) =>
          Effect.gen(function*() {
            const layer = Layer.mergeAll(memoryOrderStream(raw, assigned), memoryDeadLetters(yield* makeMemoryTopic(`dlq-${who}`)), compactingLake(who))
            return yield* consume({ topic: topicName, pollWait: "50 millis", flush, once: false }).pipe(Effect.provide(layer), Effect.fork)
          })
        const a = yield* consumer("a", assignedA)
        const b = yield* consumer("b", assignedB)
        const bursts = (from: number) =>
          Effect.forEach([0, 1], (i) =>
            fromProducer(raw, orders(from + i * 10, from + i * 10 + 9)).pipe(Effect.zipRight(TestClock.adjust("500 millis"))), { discard: true })
        yield* bursts(1)
        yield* TestClock.adjust("2 seconds")
        expect(merges.a).toBeGreaterThan(0)
        expect(merges.b).toBe(0)
        // Partition 0 moves to B: so does compaction.
        const before = merges.a
        yield* Ref.update(assignedA, (x) => ({ generation: x.generation + 1, partitions: new Set([]) }))
        yield* Ref.update(assignedB, (x) => ({ generation: x.generation + 1, partitions: new Set([0, 1]) }))
        yield* TestClock.adjust("500 millis")
        yield* bursts(101)
        yield* TestClock.adjust("2 seconds")
        expect(merges.a).toBe(before)
        expect(merges.b).toBeGreaterThan(0)
        expect(yield* idsIn(tableFiles(objects))).toEqual([...range(1, 20), ...range(101, 120)])
        yield* Fiber.interrupt(a)
        yield* Fiber.interrupt(b)
      }), 60_000)

    it.effect("a consumer that lost its partition cannot commit it after the new owner did, and the other way round", () =>
      Effect.gen(function*() {
        for (const first of ["owner", "zombie"] as const) {
          const raw = yield* makeMemoryTopic(topicName, 1)
          const objects = yield* makeMemoryObjects
          const conflicts = yield* Ref.make(0)
          yield* fromProducer(raw, orders(1, 10))
          // Both read partition 0 from the same table position (the zombie never saw the rebalance);
          // the one that goes second holds its batch until the first committed.
          const firstDone = yield* Deferred.make<void>()
          const run = (who: "owner" | "zombie") =>
            Effect.gen(function*() {
              const lake = Layer.effect(Lake, Effect.map(Lake, (real) =>
                Lake.of({
                  ...real,
                  commitBatch: (parts) =>
                    who === first
                      ? real.commitBatch(parts).pipe(Effect.ensuring(Deferred.succeed(firstDone, undefined)))
                      : Deferred.await(firstDone).pipe(Effect.zipRight(real.commitBatch(parts)))
                }))).pipe(Layer.provide(countingConflicts(objects, conflicts)))
              const layer = Layer.mergeAll(memoryOrderStream(raw), memoryDeadLetters(yield* makeMemoryTopic(`dlq-${who}`)), lake)
              return yield* consume({ topic: topicName, pollWait: "10 millis", flush: { ...flush, linger: "10 millis" }, once: true }).pipe(Effect.provide(layer))
            })
          const fiber = yield* Effect.all([run(first === "owner" ? "zombie" : "owner"), run(first)], { concurrency: 2 }).pipe(Effect.fork)
          yield* TestClock.adjust("1 second")
          const [second, winner] = yield* Fiber.join(fiber)
          expect(winner.written, first).toBe(10)
          expect(second.written, first).toBe(0)
          expect(yield* Ref.get(conflicts), first).toBe(1)
          expect(yield* idsIn(tableFiles(objects))).toEqual(range(1, 10))
        }
      }))
  })

  describe("flush policy", () => {
    const flush: FlushPolicy = { maxMessages: 1000, maxBytes: 1024 * 1024, linger: "20 millis", backlogLinger: "1 second" }
    const run = (layer: Layer.Layer<any, any>, policy: Partial<FlushPolicy> = {}) =>
      consume({ topic: topicName, pollWait: "50 millis", flush: { ...flush, ...policy }, once: false }).pipe(
        Effect.provide(layer),
        Effect.fork
      )
    const batch = (first: number, n: number, backlog: boolean) =>
      Array.from({ length: n }, (_, i) => ({
        key: null,
        value: orderToJson(order(first + i, `2025-01-15T10:00:${String(first + i).padStart(2, "0")}Z`)),
        ...(backlog && i === n - 1 ? { headers: { [backlogHeader]: "true" } } : {})
      }))
    const fileSizes = (files: Effect.Effect<ReadonlyMap<string, ReadonlyArray<Order>>>) =>
      files.pipe(Effect.map((all) => [...all.values()].map((orders) => orders.length)))

    it.effect("closes a batch after linger in light traffic: one file per burst", () =>
      Effect.gen(function*() {
        const { raw, files, layer } = yield* setup
        yield* append(raw, batch(1, 3, false))
        const fiber = yield* run(layer)
        yield* TestClock.adjust("200 millis")
        yield* append(raw, batch(4, 2, false))
        yield* TestClock.adjust("200 millis")
        expect(yield* fileSizes(files)).toEqual([3, 2])
        yield* Fiber.interrupt(fiber)
      }))

    it.effect("keeps it open while the producer flags a backlog, up to backlog_linger", () =>
      Effect.gen(function*() {
        const { raw, files, layer } = yield* setup
        yield* append(raw, batch(1, 3, true))
        const fiber = yield* run(layer)
        yield* TestClock.adjust("200 millis")
        expect(yield* fileSizes(files)).toEqual([])
        yield* append(raw, batch(4, 3, true))
        yield* TestClock.adjust("200 millis")
        yield* append(raw, batch(7, 2, false))
        // The last producer batch was not full: the backlog is over, and linger closes the batch.
        yield* TestClock.adjust("100 millis")
        expect(yield* fileSizes(files)).toEqual([8])
        yield* append(raw, batch(9, 1, true))
        yield* TestClock.adjust("999 millis")
        expect(yield* fileSizes(files)).toEqual([8])
        // A producer that flagged a backlog and then went quiet: backlog_linger bounds the wait.
        yield* TestClock.adjust("100 millis")
        expect(yield* fileSizes(files)).toEqual([8, 1])
        yield* Fiber.interrupt(fiber)
      }))

    it.effect("closes a batch at max messages, backlog or not", () =>
      Effect.gen(function*() {
        const { raw, files, layer } = yield* setup
        yield* append(raw, batch(1, 5, true))
        const fiber = yield* run(layer, { maxMessages: 2 })
        yield* TestClock.adjust("100 millis")
        expect(yield* fileSizes(files)).toEqual([2, 2])
        yield* TestClock.adjust("1 second")
        expect(yield* fileSizes(files)).toEqual([2, 2, 1])
        yield* Fiber.interrupt(fiber)
      }))
  })
})
