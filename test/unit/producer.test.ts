import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Ref, Stream, SubscriptionRef, TestClock } from "effect"
import type { CaptureKey } from "../../src/domain/CaptureKey.ts"
import type { Order } from "../../src/domain/Order.ts"
import { formatIsoMicros } from "../../src/domain/Timestamp.ts"
import { makeMemoryTopic, type MemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryCursorStore, memoryOrderPublisher, memoryOrderSource } from "../../src/layers/memory/memoryLayers.ts"
import { captureAvailable, produceForever } from "../../src/programs/producer.ts"
import { BrokerError } from "../../src/services/errors.ts"
import { OrderPublisher } from "../../src/services/OrderPublisher.ts"
import { OrderSource } from "../../src/services/OrderSource.ts"
import { order } from "./fixtures.ts"

const setup = (orders: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const rows = yield* SubscriptionRef.make(orders)
    const cursor = yield* Ref.make(Option.none<CaptureKey>())
    const topic = yield* makeMemoryTopic("orders_raw")
    const layer = Layer.mergeAll(memoryOrderSource(rows), memoryCursorStore(cursor), memoryOrderPublisher(topic))
    return { rows, cursor, topic, layer }
  })

const publishedIds = (topic: MemoryTopic) =>
  Ref.get(topic.log).pipe(Effect.map((log) =>
    log.flat().map((m) => JSON.parse(new TextDecoder().decode(m.value!)).order_id as number)
  ))

const showCursor = (cursor: Option.Option<CaptureKey>) =>
  Option.map(cursor, (c) => `${formatIsoMicros(c.created_at)}#${c.order_id}`)

describe("producer", () => {
  it.effect("publishes every order once, in capture order, even when timestamps tie across batches of 1", () =>
    Effect.gen(function*() {
      const same = "2025-01-15T12:00:00Z"
      const { topic, cursor, layer } = yield* setup([
        order(3, same), order(1, same), order(2, same), order(4, "2025-01-15T11:00:00Z"), order(5, "2025-01-16T00:00:00Z")
      ])
      const result = yield* captureAvailable(1).pipe(Effect.provide(layer))
      expect(result.published).toBe(5)
      expect(yield* publishedIds(topic)).toEqual([4, 1, 2, 3, 5])
      expect(showCursor(yield* Ref.get(cursor))).toEqual(Option.some("2025-01-16T00:00:00Z#5"))
    }))

  it.effect("captures only orders after the saved cursor", () =>
    Effect.gen(function*() {
      const { rows, topic, layer } = yield* setup([order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-15T11:00:00Z")])
      yield* captureAvailable(10).pipe(Effect.provide(layer))
      yield* Ref.update(rows, (all) => [...all, order(3, "2025-01-15T12:00:00Z")])
      const second = yield* captureAvailable(10).pipe(Effect.provide(layer))
      expect(second.published).toBe(1)
      expect(yield* publishedIds(topic)).toEqual([1, 2, 3])
    }))

  it.effect("saves the cursor only after the broker acknowledged", () =>
    Effect.gen(function*() {
      const { cursor, layer } = yield* setup([order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-15T11:00:00Z")])
      const attempts = yield* Ref.make(0)
      const failing = Layer.succeed(OrderPublisher, OrderPublisher.of({
        publish: () => Ref.update(attempts, (n) => n + 1).pipe(
          Effect.zipRight(Effect.fail(new BrokerError({ operation: "publish", cause: "broker down" })))
        ),
        publishChanges: () => Effect.die("not used by poll capture")
      }))
      const fiber = yield* Effect.fork(captureAvailable(1).pipe(Effect.provide(Layer.merge(layer, failing))))
      yield* TestClock.adjust("1 minute")
      const exit = yield* Fiber.await(fiber)
      expect(exit._tag).toBe("Failure")
      expect(yield* Ref.get(attempts)).toBe(5)
      expect(yield* Ref.get(cursor)).toEqual(Option.none())
    }))

  it.effect("runs a cycle every batch_interval when nothing signals a change", () =>
    Effect.gen(function*() {
      const { rows, topic, layer } = yield* setup([order(1, "2025-01-15T10:00:00Z")])
      const silent = Layer.effect(OrderSource, Effect.map(OrderSource, (source) => ({ ...source, changes: Stream.never })))
        .pipe(Layer.provide(layer))
      const fiber = yield* Effect.fork(
        produceForever({ batchSize: 100, interval: "5 seconds" }).pipe(Effect.provide(Layer.merge(layer, silent)))
      )
      yield* TestClock.adjust("1 second")
      expect(yield* publishedIds(topic)).toEqual([1])
      yield* Ref.update(rows, (all) => [...all, order(2, "2025-01-15T11:00:00Z")])
      yield* TestClock.adjust("3 seconds")
      expect(yield* publishedIds(topic)).toEqual([1])
      yield* TestClock.adjust("2 seconds")
      expect(yield* publishedIds(topic)).toEqual([1, 2])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("captures at once when the source signals a commit, without waiting for the interval", () =>
    Effect.gen(function*() {
      const { rows, topic, layer } = yield* setup([order(1, "2025-01-15T10:00:00Z")])
      const fiber = yield* Effect.fork(produceForever({ batchSize: 100, interval: "1 hour" }).pipe(Effect.provide(layer)))
      yield* TestClock.adjust("10 millis")
      expect(yield* publishedIds(topic)).toEqual([1])
      yield* Ref.update(rows, (all) => [...all, order(2, "2025-01-15T11:00:00Z")])
      yield* TestClock.adjust("10 millis")
      expect(yield* publishedIds(topic)).toEqual([1, 2])
      yield* Fiber.interrupt(fiber)
    }))
})
