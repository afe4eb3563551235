import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect } from "effect"
import { parseArgs } from "node:util"
import { formatTable, openLake, runQuery } from "../analytics/lakeQuery.ts"
import { defaultConfigFile, loadConfig } from "../config/loadConfig.ts"

const usage = `Usage: npm run query -- [--config FILE] [--json] "SQL"

Runs SQL with DuckDB over the lake at datalake.path. The view \`orders\` is defined (hive
partitions on: \`date\` is a DATE column), e.g.
  npm run query -- "SELECT date, count(*), sum(amount) FROM orders GROUP BY date ORDER BY date"
`

const { values, positionals } = parseArgs({
  options: {
    config: { type: "string", default: defaultConfigFile },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false }
  },
  allowPositionals: true
})
if (values.help || positionals.length !== 1) {
  process.stdout.write(usage)
  process.exit(values.help ? 0 : 2)
}

const main = Effect.gen(function*() {
  const config = yield* loadConfig(values.config)
  const connection = yield* openLake(config.datalake.path)
  const result = yield* runQuery(connection, positionals[0]!)
  process.stdout.write(values.json
    ? JSON.stringify(result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c, r[i]])))) + "\n"
    : formatTable(result))
}).pipe(Effect.scoped)

main.pipe(
  Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(Cause.pretty(cause) + "\n"))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
