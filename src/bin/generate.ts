import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer } from "effect"
import { parseArgs } from "node:util"
import { defaultConfigFile, loadConfig } from "../config/loadConfig.ts"
import { defaultLifecycleSettings, type LifecycleSettings, lifecycleSettingsProblem } from "../generator/lifecycle.ts"
import { generateLoad, type LoadProgress } from "../generator/orderLoad.ts"
import { pgClientLayer } from "../layers/live.ts"
import { connectPostgres } from "../layers/postgres/pgStartup.ts"
import { loggerLayer } from "../runtime/logging.ts"

const d = defaultLifecycleSettings
const usage = `Usage: npm run generate -- [--rate N] [--duration S] [--seed N] [--config FILE]
                             [--lifecycle] [--lifecycle-seconds S] [--updates-per-order U]
                             [--cancel-rate P] [--delete-rate P] [--max-in-flight N]

Inserts realistic orders (restaurants, their dishes and prices, reference statuses) into the
source table of the configuration, at N orders per second for S seconds (default 50/s for 10 s).
created_at is left to the database default (the insert's time, UTC).

--lifecycle gives every order a life, for capture.mode: logical (updates and deletes): it is
inserted PLACED, becomes PREPARING, then DELIVERED or CANCELLED; some get their amount corrected,
a few are deleted. Each step is one UPDATE/DELETE ... WHERE order_id = $1 in its own transaction.
After the inserts stop, the command waits until every started lifecycle has finished.
  --lifecycle-seconds S    an order's final status comes within S s of its insert (default ${d.lifecycleSeconds})
  --updates-per-order U    amount corrections per order on average (default ${d.updatesPerOrder});
                           raise it (e.g. 3) for an update-heavy load
  --cancel-rate P          share of orders CANCELLED instead of DELIVERED (default ${d.cancelRate})
  --delete-rate P          share of orders deleted after their final status (default ${d.deleteRate})
  --max-in-flight N        lifecycles running at once (default 50000); orders inserted beyond it
                           keep PLACED (memory stays bounded; the count is logged)
Without --lifecycle, orders are only inserted, with mixed statuses (as before).
The same --seed gives the same orders and the same lifecycles.`

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "50" },
    duration: { type: "string", default: "10" },
    seed: { type: "string", default: String(Date.now() % 1_000_000) },
    config: { type: "string", default: defaultConfigFile },
    lifecycle: { type: "boolean", default: false },
    "lifecycle-seconds": { type: "string", default: String(d.lifecycleSeconds) },
    "updates-per-order": { type: "string", default: String(d.updatesPerOrder) },
    "cancel-rate": { type: "string", default: String(d.cancelRate) },
    "delete-rate": { type: "string", default: String(d.deleteRate) },
    "max-in-flight": { type: "string", default: "50000" },
    help: { type: "boolean", default: false }
  }
})
const rate = Number(values.rate)
const duration = Number(values.duration)
const maxInFlight = Number(values["max-in-flight"])
const settings: LifecycleSettings = {
  lifecycleSeconds: Number(values["lifecycle-seconds"]),
  updatesPerOrder: Number(values["updates-per-order"]),
  cancelRate: Number(values["cancel-rate"]),
  deleteRate: Number(values["delete-rate"])
}
const problem = !(rate > 0) || !(duration > 0)
  ? "--rate and --duration must be > 0"
  : !(Number.isInteger(maxInFlight) && maxInFlight > 0)
  ? "--max-in-flight must be a positive integer"
  : lifecycleSettingsProblem(settings)
if (values.help || problem !== undefined) {
  process.stdout.write(usage + "\n")
  if (!values.help) process.stderr.write(`generate: ${problem}\n`)
  process.exit(values.help ? 0 : 2)
}

const logProgress = (progress: LoadProgress) =>
  Effect.logInfo(progress.phase === "inserting" ? "generated" : "finishing lifecycles").pipe(
    Effect.annotateLogs({ inserted: progress.inserted, seconds: progress.seconds, ...(progress.lifecycle ?? {}) })
  )

const main = Effect.gen(function*() {
  const config = yield* loadConfig(values.config)
  const ssl = yield* connectPostgres(config, { once: false })
  const result = yield* generateLoad({
    table: config.postgres.table,
    rate,
    seconds: duration,
    seed: Number(values.seed),
    ...(values.lifecycle ? { lifecycle: { settings, maxInFlight } } : {}),
    onProgress: logProgress
  }).pipe(Effect.provide(pgClientLayer(config, ssl, "food-orders-generator")))
  if (result.lifecycle !== null) {
    yield* Effect.logInfo("lifecycles done").pipe(Effect.annotateLogs({ inserted: result.inserted, ...result.lifecycle }))
  }
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
