import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Cause, Effect, Layer } from "effect"
import { parseArgs } from "node:util"
import { quoteIdentifier } from "../config/Identifiers.ts"
import { defaultConfigFile, loadConfig } from "../config/loadConfig.ts"
import { formatCents } from "../domain/Amount.ts"
import { makeOrderGenerator } from "../generator/generateOrders.ts"
import { pgClientLayer } from "../layers/live.ts"
import { loggerLayer } from "../runtime/logging.ts"

const usage = `Usage: npm run generate -- [--rate N] [--duration S] [--seed N] [--config FILE]

Inserts realistic orders (restaurants, their dishes and prices, reference statuses) into the
source table of the configuration, at N orders per second for S seconds (default 50/s for 10 s).
created_at is left to the database default (the insert's time, UTC).`

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "50" },
    duration: { type: "string", default: "10" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    config: { type: "string", default: defaultConfigFile },
    help: { type: "boolean", default: false }
  }
})
const rate = Number(values.rate)
const duration = Number(values.duration)
if (values.help || !(rate > 0) || !(duration > 0)) {
  process.stdout.write(usage + "\n")
  process.exit(values.help ? 0 : 2)
}

/** Ten inserts a second, each a multi-row INSERT in its own transaction. */
const tickMillis = 100

const main = Effect.gen(function*() {
  const config = yield* loadConfig(values.config)
  const table = quoteIdentifier(config.postgres.table)
  const next = makeOrderGenerator(Number(values.seed))
  const program = Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const started = Date.now()
    const ticks = Math.round((duration * 1000) / tickMillis)
    let inserted = 0
    for (let tick = 1; tick <= ticks; tick++) {
      // Catch up to the schedule rather than drift when an insert is slow.
      const due = Math.round((rate * tick * tickMillis) / 1000) - inserted
      if (due > 0) {
        const orders = Array.from({ length: due }, next)
        const params = orders.flatMap((o) => [o.customer_name, o.restaurant_name, o.item, formatCents(o.amount), o.order_status])
        const rows = orders.map((_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}::numeric, $${i * 5 + 5})`)
        yield* sql.unsafe(
          `INSERT INTO ${table} (customer_name, restaurant_name, item, amount, order_status) VALUES ${rows.join(", ")}`,
          params
        )
        inserted += due
      }
      const wait = started + tick * tickMillis - Date.now()
      if (wait > 0) yield* Effect.sleep(`${wait} millis`)
      if (tick % 10 === 0 || tick === ticks) {
        yield* Effect.logInfo("generated").pipe(Effect.annotateLogs({ inserted, seconds: Math.round((Date.now() - started) / 100) / 10 }))
      }
    }
    return inserted
  })
  return yield* program.pipe(Effect.provide(pgClientLayer(config, "food-orders-generator")))
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
