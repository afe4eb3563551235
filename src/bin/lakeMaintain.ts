import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Duration, Effect, Layer } from "effect"
import { parseArgs } from "node:util"
import { defaultConfigFile, loadConfig } from "../config/loadConfig.ts"
import { changesPathOf, type PipelineConfig } from "../config/PipelineConfig.ts"
import { legacyCheckpointOf } from "../layers/live.ts"
import { tableConfiguration, type TableSettings } from "../layers/lake/deltaLake.ts"
import { tableStorageFor } from "../layers/storage/tableStorageFor.ts"
import { loggerLayer } from "../runtime/logging.ts"
import { checkpointAndCleanLog, compactUntilDone, vacuumTable } from "../table/maintenance.ts"
import { changesFormat } from "../table/changesTable.ts"
import { openTable } from "../table/openTable.ts"
import { loadSnapshot } from "../table/readLog.ts"
import { ordersFormat, type TableFormat } from "../table/tableFormat.ts"

const usage = `Usage: npm run lake:compact -- [--config FILE]
       npm run lake:convert -- [--config FILE]

lake:compact   merges the small files of every date partition into as few as table.target_file_mb allows,
               then writes a checkpoint, cleans the log and vacuums files older than the retention;
               the same for the change history order_changes beside it, when there is one.
               Safe while the consumer runs: a conflicting commit is re-planned, never forced.
lake:convert   turns a Parquet lake written by the previous release into a Delta table (one commit
               with its files and the offsets of its checkpoint file); the consumer does the same
               on its first start. Does nothing to a lake that is a table already.
`
const { values, positionals } = parseArgs({
  options: { config: { type: "string", default: defaultConfigFile }, help: { type: "boolean", default: false } },
  allowPositionals: true
})
const command = positionals[0]
if (values.help || (command !== "compact" && command !== "convert")) {
  process.stdout.write(usage)
  process.exit(values.help ? 0 : 2)
}

/** Compacts, checkpoints and vacuums the table of `format` at the storage provided. */
const maintain = (config: PipelineConfig, settings: TableSettings, format: TableFormat<any>, path: string) =>
  Effect.gen(function*() {
    const opened = yield* openTable({ configuration: tableConfiguration(settings), legacy: settings.legacy, format })
    process.stdout.write(`Table: ${path} at version ${opened.version}, ${opened.files.size} live files\n`)
    if (command === "convert") return
    const compacted = yield* compactUntilDone(opened, {
      targetFileBytes: Math.round(config.table.target_file_mb * 1024 * 1024),
      fanIn: config.table.compaction_fan_in,
      // A one-off run merges every partition as far as the target size allows, the live one too.
      idleMs: 0
    }, Number.MAX_SAFE_INTEGER, format)
    const retentionMs = Duration.toMillis(settings.retention)
    const checkpoint = yield* checkpointAndCleanLog(compacted.snapshot, retentionMs)
    const swept = yield* vacuumTable(compacted.snapshot, retentionMs, config.table.foreign_file_retention_hours * 3_600_000)
    process.stdout.write(
      `Compacted ${compacted.inputs} files into ${compacted.merged} (${compacted.rows} rows); version ${compacted.snapshot.version}, ` +
        `${compacted.snapshot.files.size} live files.\nCheckpoint at version ${checkpoint.version}; ${checkpoint.logFilesRemoved} log files and ` +
        `${swept.removed} unreferenced data files (${swept.bytes} bytes) older than ${config.table.retention_minutes} minutes removed.\n`
    )
  }).pipe(Effect.provide(tableStorageFor(path)))

const run = (config: PipelineConfig) => Effect.gen(function*() {
  const settings: TableSettings = {
    checkpointInterval: config.table.checkpoint_interval,
    retention: Duration.minutes(config.table.retention_minutes),
    maintenance: false,
    legacy: { topic: config.kafka.topic, checkpoint: legacyCheckpointOf(config) }
  }
  yield* maintain(config, settings, ordersFormat, config.datalake.path)
  // The history exists only where logical capture wrote one: never created here.
  const history = changesPathOf(config)
  const exists = (yield* loadSnapshot().pipe(Effect.provide(tableStorageFor(history)))).version >= 0
  if (exists && command === "compact") yield* maintain(config, settings, changesFormat, history)
})

const main = Effect.flatMap(loadConfig(values.config), run)

main.pipe(
  Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(Cause.pretty(cause) + "\n"))),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
