import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect } from "effect"
import { parseArgs } from "node:util"
import { formatTable, lakeHasFiles, lakeStatsSql, openLake, runQuery } from "../analytics/lakeQuery.ts"
import { defaultConfigFile, loadConfig } from "../config/loadConfig.ts"

const usage = `Usage: npm run lake:stats -- [--config FILE]

Per date partition: files, rows, bytes, oldest and newest order; the last line is the total.
`
const { values } = parseArgs({
  options: { config: { type: "string", default: defaultConfigFile }, help: { type: "boolean", default: false } }
})
if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}

const main = Effect.gen(function*() {
  const config = yield* loadConfig(values.config)
  const lake = config.datalake.path
  if (!lakeHasFiles(lake)) {
    process.stdout.write(`The lake at ${lake} has no Parquet files yet.\n`)
    return
  }
  const connection = yield* openLake(lake)
  const result = yield* runQuery(connection, lakeStatsSql(lake))
  process.stdout.write(`Lake: ${lake}\n` + formatTable({ ...result, rows: result.rows.map((r) => [r[0] ?? "(total)", ...r.slice(1)]) }))
}).pipe(Effect.scoped)

main.pipe(
  Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(Cause.pretty(cause) + "\n"))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
