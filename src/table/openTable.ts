import { Effect } from "effect"
import type { Checkpoint } from "../domain/Checkpoint.ts"
import type { StorageError } from "../services/errors.ts"
import { TableStorage } from "../services/TableStorage.ts"
import { commit } from "./commit.ts"
import { convertLegacyLake } from "./convert.ts"
import { isDataFile } from "./dataPaths.ts"
import { logDir } from "./logFiles.ts"
import { ordersFormat, type TableFormat } from "./tableFormat.ts"
import { loadSnapshot } from "./readLog.ts"
import { emptySnapshot, type Snapshot } from "./snapshot.ts"
import { TableError } from "./tableErrors.ts"
import { writeProblem } from "./writeRules.ts"

/** Checks that we may write this table: a protocol, properties and columns we implement (writeRules.ts). */
export const checkWritable = (snapshot: Snapshot, format: TableFormat<any> = ordersFormat) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const problem = writeProblem(snapshot, format)
    if (problem !== undefined) return yield* new TableError({ reason: problem.reason, path: storage.locate(logDir), detail: problem.detail })
  })

export interface OpenOptions {
  /** Table properties set when we create the table (Spark honours them when it writes too). */
  readonly configuration: Readonly<Record<string, string>>
  /** The topic and the previous release's checkpoint file, for turning its lake into a table on first start. */
  readonly legacy: { readonly topic: string; readonly checkpoint: Effect.Effect<Checkpoint | undefined, StorageError> }
  /** The kind of table (the orders table unless said). Only the orders table converts a previous release's lake. */
  readonly format?: TableFormat<any>
}

/**
 * The table at the storage root, ready for our writes: created when there is none (version 0:
 * protocol and metadata), converted in one commit when the root holds the previous release's
 * Parquet lake. Several writers starting at once agree: whoever loses the race for version 0 reads
 * what the winner wrote.
 */
export const openTable = (options: OpenOptions) => {
  const format = options.format ?? ordersFormat
  return Effect.gen(function*() {
    const storage = yield* TableStorage
    let snapshot = yield* loadSnapshot()
    if (snapshot.version < 0) {
      const legacy = format === ordersFormat && (yield* storage.list("date=")).some((o) => isDataFile(o.path))
      const created = legacy
        ? yield* convertLegacyLake(options.legacy.topic, yield* options.legacy.checkpoint, options.configuration).pipe(
          Effect.tap((converted) =>
            Effect.logInfo("converted the Parquet lake into a Delta table").pipe(Effect.annotateLogs({
              files: converted.files,
              rows: converted.rows,
              left_out_past_checkpoint: converted.skipped
            }))
          )
        )
        : yield* commit(emptySnapshot, {
          actions: [{ protocol: format.protocol }, { metaData: format.metadata(crypto.randomUUID(), options.configuration, Date.now()) }],
          operation: "CREATE TABLE",
          format,
          conflictsWith: () => "the table was created by another writer meanwhile"
        })
      snapshot = created.snapshot
    }
    yield* checkWritable(snapshot, format)
    return snapshot
  }).pipe(
    Effect.catchTag("CommitConflict", () => loadSnapshot().pipe(Effect.tap((s) => checkWritable(s, format))))
  )
}
