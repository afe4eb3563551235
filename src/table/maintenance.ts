import { Effect } from "effect"
import { TableStorage } from "../services/TableStorage.ts"
import { cleanupLog, vacuum } from "./cleanup.ts"
import { type CompactionSettings, compactGroup, partitionLabel, planCompaction } from "./compaction.ts"
import { logDir } from "./logFiles.ts"
import { refreshSnapshot } from "./readLog.ts"
import { defaultForeignFileRetentionHours, retentionOf } from "./retention.ts"
import type { Snapshot } from "./snapshot.ts"
import { ordersFormat, type TableFormat } from "./tableFormat.ts"
import { TableError } from "./tableErrors.ts"
import { writeCheckpoint } from "./writeCheckpoint.ts"

export interface CompactionReport {
  readonly snapshot: Snapshot
  readonly merged: number
  readonly inputs: number
  readonly rows: number
}

/**
 * Compacts until no size tier of any date partition is full, at most `maxGroups` merges. A
 * conflict (another writer removed the same files) re-reads the table and plans again.
 */
export const compactUntilDone = (start: Snapshot, settings: CompactionSettings, maxGroups = 64, format: TableFormat<any> = ordersFormat) =>
  Effect.gen(function*() {
    let snapshot = start
    let merged = 0
    let inputs = 0
    let rows = 0
    while (merged < maxGroups) {
      const group = planCompaction(snapshot, settings)[0]
      if (group === undefined) break
      const result = yield* compactGroup(snapshot, group, format).pipe(
        Effect.catchTag("CommitConflict", () => Effect.succeed(undefined))
      )
      if (result === undefined) {
        snapshot = yield* refreshSnapshot(snapshot)
        continue
      }
      snapshot = result.snapshot
      merged += 1
      inputs += result.inputs
      rows += result.rows
      yield* Effect.logInfo("compacted").pipe(Effect.annotateLogs({
        version: result.version,
        table: format.name,
        partition: partitionLabel(group.partitionValues),
        files: result.inputs,
        rows: result.rows,
        bytes: result.bytes
      }))
    }
    return { snapshot, merged, inputs, rows } satisfies CompactionReport
  })

/** The table's retention (retention.ts); a property we cannot read stops cleanup, naming it. */
export const tableRetention = (snapshot: Snapshot, retentionMs: number) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    return yield* Effect.try({
      try: () => retentionOf(snapshot, retentionMs),
      catch: (error) => new TableError({ reason: "unsupported", path: storage.locate(logDir), detail: (error as Error).message })
    })
  })

/**
 * A checkpoint of `snapshot` (with the tombstones within the deleted-file retention), then log
 * cleanup behind the newest checkpoint older than the log retention.
 */
export const checkpointAndCleanLog = (snapshot: Snapshot, retentionMs: number) =>
  Effect.gen(function*() {
    const retention = yield* tableRetention(snapshot, retentionMs)
    const now = Date.now()
    const written = yield* writeCheckpoint(snapshot, now - retention.deletedFileMs)
    const removed = yield* cleanupLog(now - retention.logMs)
    return { ...written, logFilesRemoved: removed }
  })

/** Vacuum with the table's deleted-file retention; files of other engines only past `foreignMs` (default 7 days). */
export const vacuumTable = (snapshot: Snapshot, retentionMs: number, foreignMs = defaultForeignFileRetentionHours * 3_600_000) =>
  Effect.gen(function*() {
    const retention = yield* tableRetention(snapshot, retentionMs)
    const now = Date.now()
    return yield* vacuum(snapshot, now - retention.deletedFileMs, now - Math.max(foreignMs, retention.deletedFileMs))
  })
