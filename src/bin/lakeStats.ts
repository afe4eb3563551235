import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect } from "effect"
import { parseArgs } from "node:util"
import { formatTable, lakeStatsSql, openLakeVersion, parseTimeTravel, readLakeVersion, runQuery } from "../analytics/lakeQuery.ts"
import { defaultConfigFile, loadConfig } from "../config/loadConfig.ts"

const usage = `Usage: npm run lake:stats -- [--config FILE] [--version N | --as-of TIME]

The lake's table version, then per date partition of its live files: files, rows, bytes, oldest
and newest order; the last line is the total. Files in the directory that the version does not
name (compacted away, not yet vacuumed; crash leftovers) are not counted.

Options:
  --version N     a past table version instead of the latest
  --as-of TIME    the version current at TIME, e.g. 2026-11-25T17:00:00Z (no zone means UTC)
`

const fail = (message: string): never => {
  process.stderr.write(`${message}\n\n${usage}`)
  process.exit(2)
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        config: { type: "string", default: defaultConfigFile },
        version: { type: "string" },
        "as-of": { type: "string" },
        help: { type: "boolean", default: false }
      },
      strict: true
    })
  } catch (error) {
    return fail((error as Error).message)
  }
})()
if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}
const travel = parseTimeTravel({ version: values.version, asOf: values["as-of"] })
const request = typeof travel === "string" ? fail(travel) : travel

const main = Effect.gen(function*() {
  const config = yield* loadConfig(values.config)
  const path = config.datalake.path
  const lake = yield* readLakeVersion(path, request)
  if (lake.version < 0) {
    process.stdout.write(`The lake at ${path} is not a table yet (no _delta_log).\n`)
    return
  }
  const header = `Lake: ${path}\nTable version: ${lake.version} (committed ${new Date(lake.timestamp).toISOString()})\n`
  if (lake.files.length === 0) {
    process.stdout.write(`${header}No data files in this version.\n`)
    return
  }
  const connection = yield* openLakeVersion(lake)
  const result = yield* runQuery(connection, lakeStatsSql(lake))
  process.stdout.write(header + formatTable({ ...result, rows: result.rows.map((r) => [r[0] ?? "(total)", ...r.slice(1)]) }))
}).pipe(Effect.scoped)

main.pipe(
  Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(Cause.pretty(cause) + "\n"))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
