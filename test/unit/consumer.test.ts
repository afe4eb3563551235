import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref, TestClock } from "effect"
import type { Checkpoint } from "../../src/domain/Checkpoint.ts"
import type { Order } from "../../src/domain/Order.ts"
import { orderToJson } from "../../src/domain/Order.ts"
import { append, makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import {
  emptyCheckpointRef,
  memoryCheckpointStore,
  memoryDeadLetters,
  memoryLake,
  memoryOrderStream
} from "../../src/layers/memory/memoryLayers.ts"
import { consume, type FlushPolicy } from "../../src/programs/consumer.ts"
import { StorageError } from "../../src/services/errors.ts"
import { backlogHeader } from "../../src/services/OrderStream.ts"
import { Lake } from "../../src/services/Lake.ts"
import { order } from "./fixtures.ts"

const topicName = "orders_raw"

const setup = Effect.gen(function*() {
  const raw = yield* makeMemoryTopic(topicName)
  const dlq = yield* makeMemoryTopic("orders_dlq")
  const files = yield* Ref.make<ReadonlyMap<string, ReadonlyArray<Order>>>(new Map())
  const checkpoint = yield* emptyCheckpointRef(topicName)
  const layer = Layer.mergeAll(
    memoryOrderStream(raw),
    memoryDeadLetters(dlq),
    memoryLake(files),
    memoryCheckpointStore(checkpoint)
  )
  return { raw, dlq, files, checkpoint, layer }
})

const publish = (topic: Effect.Effect.Success<ReturnType<typeof makeMemoryTopic>>, values: ReadonlyArray<string>) =>
  append(topic, values.map((value) => ({ key: null, value })))

const drain = (layer: Layer.Layer<any>) =>
  consume({
    topic: topicName,
    pollWait: "10 millis",
    flush: { maxMessages: 1000, maxBytes: 1024 * 1024, linger: "10 millis", backlogLinger: "50 millis" },
    once: true
  }).pipe(Effect.provide(layer))

const lakeIds = (files: Ref.Ref<ReadonlyMap<string, ReadonlyArray<Order>>>) =>
  Ref.get(files).pipe(Effect.map((all) =>
    Object.fromEntries([...all].map(([path, orders]) => [path.split("/")[0], orders.map((o) => o.order_id)]))
  ))

describe("consumer", () => {
  it.effect("cleans, partitions by UTC date and checkpoints after the files", () =>
    Effect.gen(function*() {
      const { raw, dlq, files, checkpoint, layer } = yield* setup
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
      const saved = yield* Ref.get(checkpoint)
      expect(saved.partitions["0"]!.next_offset).toBe(6n)
      expect(saved.partitions["0"]!.last_key!.order_id).toBe(5)
    }))

  it.effect("skips orders re-published by a producer that crashed before saving its cursor", () =>
    Effect.gen(function*() {
      const { raw, files, layer } = yield* setup
      const first = [order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-15T11:00:00Z")]
      yield* publish(raw, first.map(orderToJson))
      yield* drain(layer)
      yield* publish(raw, [...first, order(3, "2025-01-15T12:00:00Z")].map(orderToJson))
      const totals = yield* drain(layer)
      expect(totals).toMatchObject({ messages: 3, written: 1, duplicates: 2 })
      const all = [...(yield* Ref.get(files)).values()].flat().map((o) => o.order_id).sort()
      expect(all).toEqual([1, 2, 3])
    }))

  it.effect("does not move the checkpoint while the lake cannot be written, and recovers", () =>
    Effect.gen(function*() {
      const { raw, files, checkpoint, layer } = yield* setup
      yield* publish(raw, [orderToJson(order(1, "2025-01-15T10:00:00Z"))])
      const writable = yield* Ref.make(false)
      const flakyLake = Layer.effect(Lake, Effect.gen(function*() {
        const real = yield* Lake
        return Lake.of({
          ...real,
          writeBatch: (batch, byDate) =>
            Effect.flatMap(Ref.get(writable), (ok) =>
              ok ? real.writeBatch(batch, byDate) : Effect.fail(new StorageError({ path: "/lake", operation: "write", cause: "EACCES" }))
            )
        })
      })).pipe(Layer.provide(layer))
      const fiber = yield* Effect.fork(drain(Layer.merge(layer, flakyLake)))
      yield* TestClock.adjust("30 seconds")
      expect((yield* Ref.get(checkpoint)).partitions).toEqual({})
      expect((yield* Ref.get(files)).size).toBe(0)
      yield* Ref.set(writable, true)
      yield* TestClock.adjust("30 seconds")
      yield* Fiber.join(fiber)
      expect((yield* Ref.get(checkpoint) as Effect.Effect<Checkpoint>)).toMatchObject({ partitions: { "0": { next_offset: 1n } } })
      expect((yield* Ref.get(files)).size).toBe(1)
    }))

  it.effect("removes files a dead run wrote past the checkpoint before writing again", () =>
    Effect.gen(function*() {
      const { raw, files, layer } = yield* setup
      yield* publish(raw, [orderToJson(order(1, "2025-01-15T10:00:00Z"))])
      // A crash after the rename and before the checkpoint: the file exists, the checkpoint is empty.
      yield* Ref.set(files, new Map([[`date=2025-01-15/part-${topicName}-0-00000000000000000000-00000000000000000000.parquet`, [order(1, "2025-01-15T10:00:00Z")]], [`date=2025-01-15/part-${topicName}-0-00000000000000000000-00000000000000000005.parquet`, [order(1, "2025-01-15T10:00:00Z")]]]))
      yield* publish(raw, [orderToJson(order(2, "2025-01-15T11:00:00Z"))])
      yield* drain(layer)
      expect([...(yield* Ref.get(files)).keys()]).toEqual([
        `date=2025-01-15/part-${topicName}-0-00000000000000000000-00000000000000000001.parquet`
      ])
    }))

  describe("flush policy", () => {
    const flush: FlushPolicy = { maxMessages: 1000, maxBytes: 1024 * 1024, linger: "20 millis", backlogLinger: "1 second" }
    const run = (layer: Layer.Layer<any>, policy: Partial<FlushPolicy> = {}) =>
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
    const fileSizes = (files: Ref.Ref<ReadonlyMap<string, ReadonlyArray<Order>>>) =>
      Ref.get(files).pipe(Effect.map((all) => [...all.values()].map((orders) => orders.length)))

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
