/**
 * The producer's gauges for the capture alerts, from the real PostgreSQL source: how long an open
 * transaction has held the capture horizon back, and the newest order the table holds.
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Metric, Redacted } from "effect"
import { afterAll, expect, it } from "vitest"
import type { SqlIdentifier } from "../../src/config/Identifiers.ts"
import { pgOrderSource } from "../../src/layers/postgres/pgOrderSource.ts"
import { captureHeldBackSeconds, sourceNewestSeconds } from "../../src/observability/metrics.ts"
import { OrderSource } from "../../src/services/OrderSource.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("capture metrics", (endpoints) => {
  let pipeline: TestPipeline | undefined
  afterAll(() => pipeline?.close())

  it("exports how long an open transaction holds capture back, and the newest order in the source", async () => {
    const p = pipeline = await makeTestPipeline(endpoints, "capm")
    await p.pool.query(`INSERT INTO "${p.table}" (customer_name, amount, order_status, created_at)
      VALUES ('a', 1, 'PLACED', TIMESTAMP '2025-04-01 09:00:00.5'), ('b', 2, 'PLACED', TIMESTAMP '2025-04-02 10:30:00.25')`)
    const gauges = Effect.all([Metric.value(captureHeldBackSeconds), Metric.value(sourceNewestSeconds)]).pipe(
      Effect.map(([held, newest]) => ({ held: held.value, newest: newest.value }))
    )
    const read = Effect.flatMap(OrderSource, (source) => source.readAfter(null, 10)).pipe(Effect.zipRight(gauges))
    const run = <A, E>(effect: Effect.Effect<A, E, OrderSource>) =>
      Effect.runPromise(effect.pipe(
        Effect.provide(pgOrderSource(p.table as SqlIdentifier).pipe(
          Layer.provide(PgClient.layer({ url: Redacted.make(endpoints.pgUrl), maxConnections: 2 }))
        ))
      ))

    const idle = await run(read)
    expect(idle.held).toBeLessThan(0.5)
    expect(idle.newest).toBe(Date.parse("2025-04-02T10:30:00.250Z") / 1000)

    const open = await p.pool.connect()
    try {
      await open.query("BEGIN")
      await open.query(`INSERT INTO "${p.table}" (customer_name, amount, order_status) VALUES ('late', 3, 'PLACED')`)
      await new Promise((r) => setTimeout(r, 1500))
      const held = await run(read)
      expect(held.held).toBeGreaterThanOrEqual(1.4)
      expect(held.held).toBeLessThan(30)
      // Uncommitted: not yet the newest order.
      expect(held.newest).toBe(Date.parse("2025-04-02T10:30:00.250Z") / 1000)
      await open.query("COMMIT")
    } finally {
      open.release()
    }
    const after = await run(read)
    expect(after.held).toBeLessThan(0.5)
    expect(after.newest).toBeGreaterThan(Date.now() / 1000 - 60)
  })
})
