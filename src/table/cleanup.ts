import { Effect } from "effect"
import { crashPoint } from "../runtime/crashPoints.ts"
import { TableStorage } from "../services/TableStorage.ts"
import { isDataFile, isOwnFile, storagePathOf } from "./dataPaths.ts"
import { parseLogEntry } from "./logFiles.ts"
import { commitTimes, listLog } from "./readLog.ts"
import type { Snapshot } from "./snapshot.ts"

/**
 * Log cleanup (PROTOCOL.md, "Metadata Cleanup"): find the newest checkpoint committed before the
 * cutoff and delete every log file of an older version, oldest first, so a crash midway leaves a
 * contiguous log that still starts at a checkpoint. The checkpoint's own commit and everything
 * after it stay: versions from there on remain readable (time travel reaches back to it).
 */
export const cleanupLog = (cutoffMs: number) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const listing = yield* listLog
    const times = new Map(commitTimes(listing))
    const keep = [...listing.checkpoints.keys()]
      .filter((version) => (times.get(version) ?? Infinity) <= cutoffMs)
      .sort((a, b) => b - a)[0]
    if (keep === undefined) return 0
    const doomed = listing.all
      .map((object) => ({ object, entry: parseLogEntry(object.path) }))
      .filter(({ entry }) => entry?.version !== undefined && entry.version < keep)
      .sort((a, b) => a.entry!.version! - b.entry!.version!)
    let removed = 0
    for (const { object } of doomed) {
      yield* storage.remove(object.path)
      removed += 1
      if (removed === 1) yield* crashPoint("cleanup.mid-log")
    }
    return removed
  }).pipe(Effect.withSpan("Table.cleanupLog"))

/**
 * Removes data files no version within the retention can name: not live in `snapshot`, not removed
 * after the cutoff, and older than the cutoff (a file younger than that may belong to a
 * commit still being made, by us or another writer). Crash leftovers and compacted-away files go
 * this way. Hidden temporary files of dead writers too. A file neither the log nor our naming
 * knows (another engine's, written for a commit its job has not made yet) must also be older than
 * `foreignCutoffMs`.
 */
export const vacuum = (snapshot: Snapshot, cutoffMs: number, foreignCutoffMs: number) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const referenced = new Set<string>()
    for (const path of snapshot.files.keys()) referenced.add(storagePathOf(path, storage.root))
    // A tombstone protects its file only within the retention (readers of older versions).
    for (const [path, remove] of snapshot.tombstones) {
      if ((remove.deletionTimestamp ?? 0) >= cutoffMs) referenced.add(storagePathOf(path, storage.root))
    }
    // Removed by some version: committed once, so not a write still in progress, whoever wrote it.
    const known = new Set([...snapshot.tombstones.keys()].map((path) => storagePathOf(path, storage.root)))
    const objects = yield* storage.list("")
    let removed = 0
    let bytes = 0
    for (const object of objects) {
      if (object.path.startsWith("_delta_log/")) continue
      const name = object.path.slice(object.path.lastIndexOf("/") + 1)
      const temporary = name.startsWith(".") && name.endsWith(".tmp")
      if (!temporary && !isDataFile(object.path)) continue
      if (referenced.has(object.path) || object.modified > cutoffMs) continue
      if (!isOwnFile(object.path) && !known.has(object.path) && object.modified > foreignCutoffMs) continue
      yield* storage.remove(object.path)
      removed += 1
      bytes += object.size
      if (removed === 1) yield* crashPoint("cleanup.mid-vacuum")
    }
    return { removed, bytes }
  }).pipe(Effect.withSpan("Table.vacuum"))
