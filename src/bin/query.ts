import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect } from "effect"
import { parseArgs } from "node:util"
import { deliveryTimesSql, formatTable, openLake, parseTimeTravel, runQuery } from "../analytics/lakeQuery.ts"
import { capturedTablesOf } from "../config/capturedTables.ts"
import { defaultConfigFile, loadConfig } from "../config/loadConfig.ts"

const usage = `Usage: npm run query -- [--config FILE] [--json] [--version N | --as-of TIME] "SQL"
       npm run query -- --delivery-times

Runs SQL with DuckDB over the lake at datalake.path, a Delta Lake table. The view \`orders\` holds
exactly the data files of the table's current version (\`date\` is a DATE column), e.g.
  npm run query -- "SELECT date, count(*), sum(amount) FROM orders GROUP BY date ORDER BY date"
With capture.mode logical, the view \`order_changes\` holds every change of every order (op, commit_lsn,
change_seq, commit_ts, xid and the order's columns after it), e.g.
  npm run query -- "SELECT op, count(*) FROM order_changes GROUP BY op"
Each table of \`tables:\` has its view under its lake name, and \`<name>_changes\` for its history
(_change_op, _commit_lsn, _change_seq, _commit_ts, _xid and the row), e.g.
  npm run query -- "SELECT cuisine, count(*) FROM restaurants GROUP BY cuisine"

Options:
  --version N     read table version N instead of the latest (time travel)
  --as-of TIME    read the version that was current at TIME, e.g. 2026-11-25T17:00:00Z
                  (ISO 8601; a time without a zone is UTC)
  --json          rows as a JSON array instead of a table
  --delivery-times  minutes from PLACED to DELIVERED per restaurant, from order_changes
`

const fail = (message: string): never => {
  process.stderr.write(`${message}\n\n${usage}`)
  process.exit(2)
}

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        config: { type: "string", default: defaultConfigFile },
        json: { type: "boolean", default: false },
        version: { type: "string" },
        "as-of": { type: "string" },
        "delivery-times": { type: "boolean", default: false },
        help: { type: "boolean", default: false }
      },
      strict: true,
      allowPositionals: true
    })
  } catch (error) {
    return fail((error as Error).message)
  }
})()
const { values, positionals } = parsed
if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}
const canned = values["delivery-times"] ? deliveryTimesSql : undefined
if (canned !== undefined ? positionals.length !== 0 : positionals.length !== 1) {
  fail(canned !== undefined ? "--delivery-times takes no SQL" : positionals.length === 0 ? "no SQL given" : `expected one SQL argument, got ${positionals.length} (quote the SQL)`)
}
const travel = parseTimeTravel({ version: values.version, asOf: values["as-of"] })
const request = typeof travel === "string" ? fail(travel) : travel

const main = Effect.gen(function*() {
  const config = yield* loadConfig(values.config)
  const tables = capturedTablesOf(config).map((table) => ({ name: table.lakeName, path: table.path, changesPath: table.changesPath }))
  const connection = yield* openLake(config.datalake.path, request, undefined, tables)
  const result = yield* runQuery(connection, canned ?? positionals[0]!)
  process.stdout.write(values.json
    ? JSON.stringify(result.rows.map((r) => Object.fromEntries(result.columns.map((c, i) => [c, r[i]])))) + "\n"
    : formatTable(result))
}).pipe(Effect.scoped)

main.pipe(
  Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(Cause.pretty(cause) + "\n"))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
