import { PgClient } from "@effect/sql-pg"
import { Effect, Ref } from "effect"
import { quoteIdentifier, type SqlIdentifier } from "../config/Identifiers.ts"
import { formatCents } from "../domain/Amount.ts"
import { makeOrderGenerator } from "../generator/generateOrders.ts"

export interface InsertOptions {
  readonly table: SqlIdentifier
  /** Orders per second. */
  readonly rate: number
  readonly seconds: number
  readonly seed: number
}

/** A multi-row INSERT every tick: ten transactions a second, like a busy ordering front end. */
const tickMillis = 100

/**
 * Inserts realistic orders for `seconds`, counting them in `inserted` as each INSERT commits.
 * Catches up to the schedule rather than drifting when an insert is slow. `created_at` is left to
 * the database default (the transaction's start, UTC), which the capture horizon relies on.
 */
export const insertOrders = Effect.fn("Demo.insertOrders")(function*(options: InsertOptions, inserted: Ref.Ref<number>) {
  const sql = yield* PgClient.PgClient
  const table = quoteIdentifier(options.table)
  const next = makeOrderGenerator(options.seed)
  const started = Date.now()
  const ticks = Math.max(1, Math.round((options.seconds * 1000) / tickMillis))
  for (let tick = 1; tick <= ticks; tick++) {
    const due = Math.round((options.rate * tick * tickMillis) / 1000) - (yield* Ref.get(inserted))
    if (due > 0) {
      const orders = Array.from({ length: due }, next)
      const params = orders.flatMap((o) => [o.customer_name, o.restaurant_name, o.item, formatCents(o.amount), o.order_status])
      const rows = orders.map((_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}::numeric, $${i * 5 + 5})`)
      // Uninterruptible: a committed INSERT is always counted, and stopping never cancels a query
      // (see embeddedOrderSource in demoPipeline.ts for why a cancel would stall).
      yield* Effect.uninterruptible(
        sql.unsafe(
          `INSERT INTO ${table} (customer_name, restaurant_name, item, amount, order_status) VALUES ${rows.join(", ")}`,
          params
        ).pipe(Effect.zipRight(Ref.update(inserted, (n) => n + due)))
      )
    }
    const wait = started + tick * tickMillis - Date.now()
    if (wait > 0) yield* Effect.sleep(`${wait} millis`)
  }
})

/** What the source table holds: the demo's independent count of the orders generated. */
export const countOrders = (table: SqlIdentifier) =>
  Effect.flatMap(PgClient.PgClient, (sql) =>
    sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdentifier(table)}`)).pipe(
      Effect.map((rows) => rows[0]?.n ?? 0)
    )
