import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Ref, TestClock } from "effect"
import type { Order } from "../../src/domain/Order.ts"
import { orderToJson } from "../../src/domain/Order.ts"
import { append, makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryDeadLetters, memoryOrderStream } from "../../src/layers/memory/memoryLayers.ts"
import { makeMemoryObjects } from "../../src/layers/storage/memoryTableStorage.ts"
import { consume } from "../../src/programs/consumer/consume.ts"
import type { FlushPolicy } from "../../src/programs/consumer/flushPolicy.ts"
import { StorageError } from "../../src/services/errors.ts"
import { backlogHeader, captureKeyHeader, captureKeyText } from "../../src/services/OrderStream.ts"
import { formatIsoMicros } from "../../src/domain/Timestamp.ts"
import { Lake } from "../../src/services/Lake.ts"
import { order } from "./fixtures.ts"
import { memoryLakeLayer, tableFiles } from "../support/memoryTable.ts"

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

const drain = (layer: Layer.Layer<any, any>) =>
  consume({
    topic: topicName,
    pollWait: "10 millis",
    flush: { maxMessages: 1000, maxBytes: 1024 * 1024, linger: "10 millis", backlogLinger: "50 millis" },
    once: true
  }).pipe(Effect.provide(layer))

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
      expect(yield* position).toEqual({ nextOffset: 6n, lastCaptureKey: null })
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
