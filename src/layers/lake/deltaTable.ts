import { Cause, Duration, Effect, Metric, Queue, Ref, Schedule, type Scope } from "effect"
import type { Checkpoint } from "../../domain/Checkpoint.ts"
import { lakeCompactions, lakeLiveFiles, lakeTableVersion } from "../../observability/metrics.ts"
import type { StorageError } from "../../services/errors.ts"
import type { LakeError, WrittenFile } from "../../services/Lake.ts"
import { TableStorage } from "../../services/TableStorage.ts"
import type { Action, AddFile } from "../../table/actions.ts"
import type { CompactionSettings } from "../../table/compaction.ts"
import { checkpointAndCleanLog, compactUntilDone, tableRetention, vacuumTable } from "../../table/maintenance.ts"
import { openTable } from "../../table/openTable.ts"
import { loadSnapshot, refreshSnapshot } from "../../table/readLog.ts"
import { type Snapshot, withoutExpiredTombstones } from "../../table/snapshot.ts"
import { logPathOf, nullPartitionName, partitionDir } from "../../table/dataPaths.ts"
import { partitionColumnsOf, rowFileBytes, type TableFormat } from "../../table/tableFormat.ts"

export interface TableSettings {
  /** A checkpoint every this many versions. */
  readonly checkpointInterval: number
  /** History kept: log entries and removed files younger than this stay (it bounds time travel); longer if the table's properties say so. */
  readonly retention: Duration.DurationInput
  /** Unreferenced files not written by this pipeline (another engine's job in progress) stay this long (default 7 days). */
  readonly foreignFileRetention?: Duration.DurationInput
  /** Compaction and vacuum inside this process (the consumer's default), or not at all. */
  readonly maintenance: false | (CompactionSettings & { readonly vacuumInterval: Duration.DurationInput })
  /** The topic the consumer reads, and the previous release's checkpoint file for it (upgrade on first start). */
  readonly legacy: { readonly topic: string; readonly checkpoint: Effect.Effect<Checkpoint | undefined, StorageError> }
}

/** Table properties we create the table with, so Spark's own cleanup agrees with ours. */
export const tableConfiguration = (settings: TableSettings): Record<string, string> => {
  // Exactly the configured retention (cleanup keeps the longer of it and these): a test's or a
  // benchmark's seconds must not become a minute.
  const ms = Math.max(1, Math.round(Duration.toMillis(Duration.decode(settings.retention))))
  const interval = ms % 60_000 === 0 ? `interval ${ms / 60_000} minutes` : ms % 1000 === 0 ? `interval ${ms / 1000} seconds` : `interval ${ms} milliseconds`
  return {
    "delta.checkpointInterval": String(settings.checkpointInterval),
    "delta.logRetentionDuration": interval,
    "delta.deletedFileRetentionDuration": interval
  }
}

const keepNewest = (ref: Ref.Ref<Snapshot>, next: Snapshot) => Ref.update(ref, (s) => (next.version > s.version ? next : s))

/** A file written for a commit, not yet committed. */
export interface StagedFile {
  readonly add: { readonly add: AddFile }
  readonly written: WrittenFile
}

/** One Delta table this process writes: its snapshot, kept current, and its upkeep. */
export interface DeltaTable<Row> {
  readonly format: TableFormat<Row>
  readonly storage: TableStorage["Type"]
  /** The newest snapshot: read from the log (`refresh`), or only when it may be stale (`if-stale`). */
  readonly latest: (mode: "refresh" | "if-stale") => Effect.Effect<Snapshot, LakeError>
  /** Our commit (started at `started`) landed as `snapshot`: follow it, and maybe checkpoint. */
  readonly committed: (snapshot: Snapshot, started: number) => Effect.Effect<void>
  /**
   * One file per partition value (null: the null partition), named by `pathOf` in its partition's
   * directory (partitionDir); an unpartitioned table takes every row into one file at its root, in
   * the map's order. If one fails (a full disk), the ones already written are removed again.
   */
  readonly writeFiles: (
    pathOf: (dir: string) => string,
    rowsByPartition: ReadonlyMap<string | null, ReadonlyArray<Row>>
  ) => Effect.Effect<Array<StagedFile>, StorageError>
  readonly setMaintenance: (on: boolean) => void
}

/**
 * Opens (creating it if needed) the table of `format` on `storage`, and runs its upkeep in the
 * caller's scope. One snapshot in memory follows the table: our own commits advance it, and every
 * commit steps over (and applies) other writers' versions, so a commit costs one put-if-absent,
 * never a re-read of the log. Maintenance runs beside the stream: a checkpoint every
 * `checkpointInterval` versions with log cleanup, size-tiered compaction when a commit fills a
 * tier, and a vacuum every `vacuumInterval`. `primary`: this table's version and file count are
 * the ones the metrics show. `upkeep` is held while maintenance works, shared by the tables of a process.
 */
export const openDeltaTable = <Row>(
  storage: TableStorage["Type"],
  settings: TableSettings,
  format: TableFormat<Row>,
  primary: boolean,
  upkeep: Effect.Semaphore
): Effect.Effect<DeltaTable<Row>, LakeError, Scope.Scope> =>
  Effect.gen(function*() {
    const retentionMs = Duration.toMillis(Duration.decode(settings.retention))
    const foreignMs = settings.foreignFileRetention === undefined ? undefined : Duration.toMillis(Duration.decode(settings.foreignFileRetention))
    const opened = yield* openTable({ configuration: tableConfiguration(settings), legacy: settings.legacy, format }).pipe(
      Effect.provideService(TableStorage, storage)
    )
    yield* Effect.logInfo("table open").pipe(Effect.annotateLogs({
      table: storage.root,
      version: opened.version,
      files: opened.files.size
    }))
    const current = yield* Ref.make(opened)
    const showMetrics = (snapshot: Snapshot) =>
      primary
        ? Effect.zipRight(Metric.set(lakeTableVersion, snapshot.version), Metric.set(lakeLiveFiles, snapshot.files.size))
        : Effect.void
    yield* showMetrics(opened)
    const wake = yield* Queue.sliding<void>(1)
    const scope = yield* Effect.scope
    let checkpointing = false
    /** Off while another consumer of the group maintains the table (Lake.setMaintenance). */
    let maintaining = true
    // Counted from the versions we see, not multiples of the interval: another writer's commits,
    // or a compaction pass that made several, may step over those.
    let lastCheckpoint = opened.version
    /**
     * When our snapshot was last known to be the table's newest version (read from the log, or our
     * own commit on top of it). Log cleanup deletes only commits older than the retention, so a
     * snapshot confirmed within half of it can be committed on (a version someone wrote after it is
     * still there to step over) and vacuumed against. An older one is read again whole: one consumer
     * of a group can sit idle for an hour while the others commit and clean the log up, and its next
     * version would then be free to write behind the newest checkpoint, where no reader looks.
     */
    let confirmedAt = Date.now()
    const latest = (mode: "refresh" | "if-stale") =>
      Effect.gen(function*() {
        const started = Date.now()
        const held = yield* Ref.get(current)
        const stale = started - confirmedAt >= retentionMs / 2
        if (!stale && mode === "if-stale") return held
        const fresh = stale ? yield* loadSnapshot() : yield* refreshSnapshot(held)
        confirmedAt = started
        yield* keepNewest(current, fresh)
        return fresh
      }).pipe(Effect.provideService(TableStorage, storage))

    const afterCommit = (snapshot: Snapshot) =>
      Effect.gen(function*() {
        yield* keepNewest(current, snapshot)
        yield* showMetrics(snapshot)
        yield* Queue.offer(wake, undefined)
        // One writer of a group checkpoints (the one that maintains): N consumers would write each
        // checkpoint N times, and a lagging one would point `_last_checkpoint` back.
        if (!maintaining || snapshot.version - lastCheckpoint < settings.checkpointInterval || checkpointing) return
        checkpointing = true
        lastCheckpoint = snapshot.version
        // Off the commit's path: a checkpoint of a large table must not stall the stream.
        yield* checkpointAndCleanLog(snapshot, retentionMs).pipe(
          Effect.tap((done) => Effect.logDebug("checkpoint written").pipe(Effect.annotateLogs({ table: format.name, ...done }))),
          Effect.catchAllCause((cause) =>
            Effect.logWarning("checkpoint failed; the next one retries").pipe(Effect.annotateLogs({ table: format.name, error: Cause.pretty(cause) }))
          ),
          Effect.ensuring(Effect.sync(() => (checkpointing = false))),
          Effect.provideService(TableStorage, storage),
          Effect.forkIn(scope)
        )
      })

    if (settings.maintenance !== false) {
      const maintenance = settings.maintenance
      const vacuumEveryMs = Duration.toMillis(Duration.decode(maintenance.vacuumInterval))
      let lastVacuum = Date.now()
      const pass = Effect.gen(function*() {
        if (!maintaining) return
        const compacted = yield* compactUntilDone(yield* latest("if-stale"), maintenance, 64, format)
        if (compacted.merged > 0) {
          yield* Metric.incrementBy(lakeCompactions, compacted.merged)
          yield* afterCommit(compacted.snapshot)
        }
        if (Date.now() - lastVacuum >= vacuumEveryMs) {
          lastVacuum = Date.now()
          // Every other writer's files must be in the snapshot vacuum keeps files of.
          const fresh = yield* latest("refresh")
          const swept = yield* vacuumTable(fresh, retentionMs, foreignMs)
          if (swept.removed > 0) yield* Effect.logInfo("vacuumed").pipe(Effect.annotateLogs({ table: format.name, ...swept }))
          // Removed files past the retention are gone from disk: forget them (checkpoints drop them too).
          const cutoff = Date.now() - (yield* tableRetention(fresh, retentionMs)).deletedFileMs
          yield* Ref.update(current, (s) => withoutExpiredTombstones(s, cutoff))
        }
      }).pipe(
        Effect.provideService(TableStorage, storage),
        // Whatever went wrong (a full disk, a damaged file), the stream goes on and the next pass retries.
        Effect.catchAllCause((cause) =>
          Effect.logWarning("table maintenance failed; retrying on the next commit").pipe(
            Effect.annotateLogs({ table: format.name, error: Cause.pretty(cause) })
          )
        )
      )
      // Woken by commits; otherwise often enough to notice a partition going quiet.
      const idlePoll = Duration.millis(Math.min(30_000, Math.max(1_000, maintenance.idleMs / 2)))
      yield* Queue.take(wake).pipe(
        Effect.timeout(idlePoll),
        Effect.ignore,
        // One table's upkeep at a time in a process: two compactions at once would double the memory a merge takes.
        Effect.zipRight(upkeep.withPermits(1)(pass)),
        // Let a burst of commits land before planning: fewer, larger merges.
        Effect.zipRight(Effect.sleep("200 millis")),
        Effect.repeat(Schedule.forever),
        // The history table opens inside a batch's uninterruptible commit: its upkeep must still stop with the scope.
        Effect.interruptible,
        Effect.forkIn(scope)
      )
    }

    const columns = partitionColumnsOf(format)
    const writeFiles = (pathOf: (dir: string) => string, rowsByPartition: ReadonlyMap<string | null, ReadonlyArray<Row>>) => {
      const attempted: Array<string> = []
      const groups: Array<readonly [string | null, ReadonlyArray<Row>]> = columns.length === 0
        ? [[null, [...rowsByPartition.values()].flat()]]
        : [...rowsByPartition]
      return Effect.forEach(groups.filter(([, rows]) => rows.length > 0), ([value, rows]) =>
        Effect.suspend(() => {
          // "" is the null partition, as Spark writes it: one directory, one value in the log.
          const partitionValues = columns.length === 0 ? {} : { [columns[0]!]: value === "" ? null : value }
          const path = pathOf(partitionDir(columns, partitionValues))
          attempted.push(path)
          const bytes = rowFileBytes(format, rows)
          const add = {
            add: {
              path: logPathOf(path),
              partitionValues,
              size: bytes.byteLength,
              modificationTime: Date.now(),
              dataChange: true,
              stats: format.stats().add(rows).json()
            }
          } satisfies Action
          const date = columns.length === 0 ? "" : partitionValues[columns[0]!] ?? nullPartitionName
          return storage.write(path, bytes).pipe(
            Effect.as({ add, written: { path: storage.locate(path), date, rows: rows.length, bytes: bytes.byteLength } } satisfies StagedFile)
          )
        })).pipe(
        Effect.tapError(() => Effect.forEach(attempted, (path) => storage.remove(path).pipe(Effect.ignore), { discard: true }))
      )
    }

    return {
      format,
      storage,
      latest,
      committed: (snapshot, started) =>
        Effect.suspend(() => {
          // Ours went on top of the newest version there was: the snapshot is current as of the start.
          confirmedAt = Math.max(confirmedAt, started)
          return afterCommit(snapshot)
        }),
      writeFiles,
      setMaintenance: (on) => {
        maintaining = on
      }
    } satisfies DeltaTable<Row>
  })
