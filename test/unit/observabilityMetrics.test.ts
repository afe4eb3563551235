/**
 * The series monitoring/alerts.yml relies on: readiness as gauges, dead-letter series present at 0
 * before the first dead letter, and the producer's cursor exported as soon as it is loaded.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Metric, Option, Ref, SubscriptionRef } from "effect"
import { keyOf } from "../../src/domain/CaptureKey.ts"
import type { Order } from "../../src/domain/Order.ts"
import { makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryCursorStore, memoryOrderPublisher, memoryOrderSource } from "../../src/layers/memory/memoryLayers.ts"
import { Health, healthLayer } from "../../src/observability/Health.ts"
import { healthCheckOk, healthReady, producerCursorSeconds, registerDeadLetterReasons } from "../../src/observability/metrics.ts"
import { prometheusText } from "../../src/observability/prometheus.ts"
import { captureAvailable } from "../../src/programs/producer.ts"
import { order } from "./fixtures.ts"

const gauge = (metric: Metric.Metric.Gauge<number>) => Metric.value(metric).pipe(Effect.map((s) => s.value))
const check = (dependency: string) => gauge(healthCheckOk.pipe(Metric.tagged("dependency", dependency)))

describe("metrics for alerts", () => {
  it.effect("health_ready and health_check_ok follow what /health reports", () =>
    Effect.gen(function*() {
      const health = yield* Health
      expect(yield* gauge(healthReady)).toBe(0)
      // Not exported before the first report: "not used yet" is not "failing".
      expect(yield* prometheusText).not.toContain("health_check_ok{dependency=\"lake\"}")
      yield* health.report("broker", { ok: true })
      expect([yield* gauge(healthReady), yield* check("broker")]).toEqual([0, 1])
      expect(yield* prometheusText).not.toContain("health_check_ok{dependency=\"lake\"}")
      yield* health.report("lake", { ok: true })
      expect([yield* gauge(healthReady), yield* check("lake")]).toEqual([1, 1])
      expect((yield* health.snapshot).ready).toBe(true)
      yield* health.report("broker", { ok: false, error: "connection refused" })
      expect([yield* gauge(healthReady), yield* check("broker")]).toEqual([0, 0])
      expect((yield* health.snapshot).ready).toBe(false)
      expect(yield* prometheusText).toContain(`health_check_ok{dependency="broker"} 0`)
    }).pipe(Effect.provide(healthLayer(["broker", "lake"]))))

  it.effect("every dead-letter reason is a series at 0 before the first dead letter", () =>
    Effect.gen(function*() {
      yield* registerDeadLetterReasons
      const text = yield* prometheusText
      for (const reason of ["empty_value", "value_too_large", "invalid_utf8", "invalid_json", "invalid_schema", "null_order_id", "null_created_at", "negative_amount"]) {
        expect(text).toMatch(new RegExp(`^orders_dead_lettered_total\\{reason="${reason}"\\} \\d+$`, "m"))
      }
    }))

  it.effect("the producer exports its saved cursor before it publishes anything", () =>
    Effect.gen(function*() {
      const saved = order(7, "2025-03-01T08:30:00.250Z")
      const rows = yield* SubscriptionRef.make<ReadonlyArray<Order>>([saved])
      const cursor = yield* Ref.make(Option.some(keyOf(saved)))
      const topic = yield* makeMemoryTopic("orders_raw")
      yield* Metric.set(producerCursorSeconds, 0)
      const result = yield* captureAvailable(10).pipe(
        Effect.provide(Layer.mergeAll(memoryOrderSource(rows), memoryCursorStore(cursor), memoryOrderPublisher(topic)))
      )
      expect(result.published).toBe(0)
      expect(yield* gauge(producerCursorSeconds)).toBe(Date.parse("2025-03-01T08:30:00.250Z") / 1000)
    }))
})
