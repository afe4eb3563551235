import { SqlClient } from "@effect/sql"
import { Clock, Effect } from "effect"
import { quoteIdentifier, type SqlIdentifier } from "../config/Identifiers.ts"
import { centsFromNumeric, formatCents } from "../domain/Amount.ts"
import { makeOrderGenerator } from "./generateOrders.ts"
import type { LifecycleSettings } from "./lifecycle.ts"
import { type LifecycleStats, makeLifecycleDriver } from "./lifecycleDriver.ts"

export interface OrderLoadOptions {
  readonly table: SqlIdentifier
  /** Orders per second. */
  readonly rate: number
  readonly seconds: number
  readonly seed: number
  /** Give each order a life after its insert (as PLACED); absent: plain inserts with mixed statuses. */
  readonly lifecycle?: {
    readonly settings: LifecycleSettings
    readonly maxInFlight: number
  }
  /** Called about once a second while inserting, and once a second while the lifecycles finish. */
  readonly onProgress?: (progress: LoadProgress) => Effect.Effect<void>
}

export interface LoadProgress {
  readonly phase: "inserting" | "finishing lifecycles"
  readonly inserted: number
  readonly seconds: number
  readonly lifecycle: LifecycleStats | null
}

/** Ten inserts a second, each a multi-row INSERT in its own transaction. */
const tickMillis = 100

/**
 * Inserts realistic orders at `rate` for `seconds`, catching up to the schedule rather than drifting
 * when an insert is slow; `created_at` is left to the database default. With a lifecycle, every
 * order starts PLACED and its later steps run between the inserts, then until the last one is done.
 */
export const generateLoad = Effect.fn("Generator.load")(function*(options: OrderLoadOptions) {
  const sql = yield* SqlClient.SqlClient
  const table = quoteIdentifier(options.table)
  const next = makeOrderGenerator(options.seed)
  const driver = options.lifecycle === undefined
    ? null
    : yield* makeLifecycleDriver({ table: options.table, seed: options.seed, ...options.lifecycle })
  const progress = (phase: LoadProgress["phase"], inserted: number, started: number) =>
    Effect.gen(function*() {
      if (options.onProgress === undefined) return
      const now = yield* Clock.currentTimeMillis
      const lifecycle = driver === null ? null : yield* driver.stats
      yield* options.onProgress({ phase, inserted, seconds: Math.round((now - started) / 100) / 10, lifecycle })
    })

  const started = yield* Clock.currentTimeMillis
  const ticks = Math.max(1, Math.round((options.seconds * 1000) / tickMillis))
  let inserted = 0
  for (let tick = 1; tick <= ticks; tick++) {
    const due = Math.round((options.rate * tick * tickMillis) / 1000) - inserted
    if (due > 0) {
      const orders = Array.from({ length: due }, next)
      const params = orders.flatMap((o) => [o.customer_name, o.restaurant_name, o.item, formatCents(o.amount), driver === null ? o.order_status : "PLACED"])
      const rows = orders.map((_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}::numeric, $${i * 5 + 5})`)
      const returned = yield* sql.unsafe<{ order_id: number; amount: string }>(
        `INSERT INTO ${table} (customer_name, restaurant_name, item, amount, order_status) VALUES ${rows.join(", ")} ` +
          `RETURNING order_id, amount::text AS amount`,
        params
      )
      inserted += due
      if (driver !== null) {
        yield* driver.track(returned.map((row) => ({ orderId: Number(row.order_id), amount: centsFromNumeric(row.amount) ?? 0 })))
      }
    }
    if (driver !== null) yield* driver.runDue
    const wait = started + tick * tickMillis - (yield* Clock.currentTimeMillis)
    if (wait > 0) yield* Effect.sleep(`${wait} millis`)
    if (tick % 10 === 0 || tick === ticks) yield* progress("inserting", inserted, started)
  }
  if (driver !== null) {
    const finishing = Effect.gen(function*() {
      for (;;) {
        yield* Effect.sleep("1 second")
        yield* progress("finishing lifecycles", inserted, started)
      }
    })
    yield* Effect.raceFirst(driver.drain, finishing)
  }
  return { inserted, lifecycle: driver === null ? null : yield* driver.stats }
})
