import { Effect } from "effect"
import { cleanupLog, vacuum } from "./cleanup.ts"
import { type CompactionSettings, compactGroup, planCompaction } from "./compaction.ts"
import { refreshSnapshot } from "./readLog.ts"
import type { Snapshot } from "./snapshot.ts"
import { ordersFormat, type TableFormat } from "./tableFormat.ts"
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
        date: group.date,
        files: result.inputs,
        rows: result.rows,
        bytes: result.bytes
      }))
    }
    return { snapshot, merged, inputs, rows } satisfies CompactionReport
  })

/** A checkpoint of `snapshot`, then log cleanup behind the newest checkpoint older than the retention. */
export const checkpointAndCleanLog = (snapshot: Snapshot, retentionMs: number) =>
  Effect.gen(function*() {
    const cutoff = Date.now() - retentionMs
    const written = yield* writeCheckpoint(snapshot, cutoff)
    const removed = yield* cleanupLog(cutoff)
    return { ...written, logFilesRemoved: removed }
  })

export const vacuumTable = (snapshot: Snapshot, retentionMs: number) => vacuum(snapshot, Date.now() - retentionMs)
