import { Cause, Duration, Effect, Either, Layer, Metric, Queue, Ref, Schedule } from "effect"
import { lakeCompactions, lakeLiveFiles, lakeRewriteRebases, lakeTableVersion } from "../../observability/metrics.ts"
import type { Checkpoint } from "../../domain/Checkpoint.ts"
import type { Order } from "../../domain/Order.ts"
import { utcDate } from "../../domain/Timestamp.ts"
import { crashPoint } from "../../runtime/crashPoints.ts"
import type { StorageError } from "../../services/errors.ts"
import { Lake, type WrittenFile } from "../../services/Lake.ts"
import { TableStorage } from "../../services/TableStorage.ts"
import type { Action } from "../../table/actions.ts"
import { commit } from "../../table/commit.ts"
import type { CompactionSettings } from "../../table/compaction.ts"
import { streamFilePath } from "../../table/dataPaths.ts"
import { existingRows } from "../../table/existingRows.ts"
import { checkpointAndCleanLog, compactUntilDone, vacuumTable } from "../../table/maintenance.ts"
import { checkWritable, openTable } from "../../table/openTable.ts"
import { ordersFileBytes } from "../../table/ordersFile.ts"
import { ordersStats } from "../../table/ordersTable.ts"
import { partitionAppIds, positionTxns, tablePositions } from "../../table/positions.ts"
import { loadSnapshot, refreshSnapshot } from "../../table/readLog.ts"
import { netChanges, rewriteWithout } from "../../table/rewrite.ts"
import { type Snapshot, withoutExpiredTombstones } from "../../table/snapshot.ts"
import { CommitConflict } from "../../table/tableErrors.ts"

export interface TableSettings {
  /** A checkpoint every this many versions. */
  readonly checkpointInterval: number
  /** History kept: log entries and removed files younger than this stay (it bounds time travel). */
  readonly retention: Duration.DurationInput
  /** Compaction and vacuum inside this process (the consumer's default), or not at all. */
  readonly maintenance: false | (CompactionSettings & { readonly vacuumInterval: Duration.DurationInput })
  /** The topic the consumer reads, and the previous release's checkpoint file for it (upgrade on first start). */
  readonly legacy: { readonly topic: string; readonly checkpoint: Effect.Effect<Checkpoint | undefined, StorageError> }
}

/** Table properties we create the table with, so Spark's own cleanup agrees with ours. */
export const tableConfiguration = (settings: TableSettings): Record<string, string> => {
  const minutes = Math.max(1, Math.round(Duration.toMinutes(Duration.decode(settings.retention))))
  return {
    "delta.checkpointInterval": String(settings.checkpointInterval),
    "delta.logRetentionDuration": `interval ${minutes} minutes`,
    "delta.deletedFileRetentionDuration": `interval ${minutes} minutes`
  }
}

/** Times a batch of changes plans its rewrites again after a compaction or another consumer took a file first. */
const maxRebases = 20

const keepNewest = (ref: Ref.Ref<Snapshot>, next: Snapshot) => Ref.update(ref, (s) => (next.version > s.version ? next : s))

/**
 * The Lake as a Delta table on a TableStorage. One snapshot in memory follows the table: our own
 * commits advance it, and every commit steps over (and applies) other writers' versions, so a
 * commit costs one put-if-absent, never a re-read of the log. Maintenance runs beside the stream:
 * a checkpoint every `checkpointInterval` versions with log cleanup, size-tiered compaction when a
 * commit fills a tier, and a vacuum every `vacuumInterval`.
 */
export const deltaLake = (settings: TableSettings) =>
  Layer.scoped(
    Lake,
    Effect.gen(function*() {
      const storage = yield* TableStorage
      const retentionMs = Duration.toMillis(Duration.decode(settings.retention))
      const opened = yield* openTable({ configuration: tableConfiguration(settings), legacy: settings.legacy })
      yield* Effect.logInfo("table open").pipe(Effect.annotateLogs({
        table: storage.root,
        version: opened.version,
        files: opened.files.size
      }))
      const current = yield* Ref.make(opened)
      yield* Metric.set(lakeTableVersion, opened.version)
      yield* Metric.set(lakeLiveFiles, opened.files.size)
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
          yield* Metric.set(lakeTableVersion, snapshot.version)
          yield* Metric.set(lakeLiveFiles, snapshot.files.size)
          yield* Queue.offer(wake, undefined)
          // One writer of a group checkpoints (the one that maintains): N consumers would write each
          // checkpoint N times, and a lagging one would point `_last_checkpoint` back.
          if (!maintaining || snapshot.version - lastCheckpoint < settings.checkpointInterval || checkpointing) return
          checkpointing = true
          lastCheckpoint = snapshot.version
          // Off the commit's path: a checkpoint of a large table must not stall the stream.
          yield* checkpointAndCleanLog(snapshot, retentionMs).pipe(
            Effect.tap((done) => Effect.logDebug("checkpoint written").pipe(Effect.annotateLogs(done))),
            Effect.catchAllCause((cause) =>
              Effect.logWarning("checkpoint failed; the next one retries").pipe(Effect.annotateLogs({ error: Cause.pretty(cause) }))
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
          const compacted = yield* compactUntilDone(yield* latest("if-stale"), maintenance)
          if (compacted.merged > 0) {
            yield* Metric.incrementBy(lakeCompactions, compacted.merged)
            yield* afterCommit(compacted.snapshot)
          }
          if (Date.now() - lastVacuum >= vacuumEveryMs) {
            lastVacuum = Date.now()
            // Every other writer's files must be in the snapshot vacuum keeps files of.
            const swept = yield* vacuumTable(yield* latest("refresh"), retentionMs)
            if (swept.removed > 0) yield* Effect.logInfo("vacuumed").pipe(Effect.annotateLogs(swept))
            // Removed files past the retention are gone from disk: forget them (checkpoints drop them too).
            const cutoff = Date.now() - retentionMs
            yield* Ref.update(current, (s) => withoutExpiredTombstones(s, cutoff))
          }
        }).pipe(
          Effect.provideService(TableStorage, storage),
          // Whatever went wrong (a full disk, a damaged file), the stream goes on and the next pass retries.
          Effect.catchAllCause((cause) =>
            Effect.logWarning("table maintenance failed; retrying on the next commit").pipe(
              Effect.annotateLogs({ error: Cause.pretty(cause) })
            )
          )
        )
        // Woken by commits; otherwise often enough to notice a partition going quiet.
        const idlePoll = Duration.millis(Math.min(30_000, Math.max(1_000, maintenance.idleMs / 2)))
        yield* Queue.take(wake).pipe(
          Effect.timeout(idlePoll),
          Effect.ignore,
          Effect.zipRight(pass),
          // Let a burst of commits land before planning: fewer, larger merges.
          Effect.zipRight(Effect.sleep("200 millis")),
          Effect.repeat(Schedule.forever),
          Effect.forkScoped
        )
      }

      /** One file per date; if one fails (a full disk), the ones already written are removed again. */
      const writeFiles = (topic: string, partition: number, first: bigint, last: bigint, ordersByDate: ReadonlyMap<string, ReadonlyArray<Order>>) => {
        const attempted: Array<string> = []
        return Effect.forEach([...ordersByDate], ([date, orders]) =>
          Effect.suspend(() => {
            const path = streamFilePath(date, topic, partition, first, last)
            attempted.push(path)
            const bytes = ordersFileBytes(orders)
            const now = Date.now()
            const add: Action = {
              add: {
                path,
                partitionValues: { date },
                size: bytes.byteLength,
                modificationTime: now,
                dataChange: true,
                stats: ordersStats(orders)
              }
            }
            return storage.write(path, bytes).pipe(
              Effect.as({ add, written: { path: storage.locate(path), date, rows: orders.length, bytes: bytes.byteLength } satisfies WrittenFile })
            )
          })).pipe(
          Effect.tapError(() => Effect.forEach(attempted, (path) => storage.remove(path).pipe(Effect.ignore), { discard: true }))
        )
      }

      return Lake.of({
        positions: (topic) =>
          Effect.gen(function*() {
            const fresh = yield* latest("refresh")
            yield* checkWritable(fresh)
            return tablePositions(fresh, topic)
          }).pipe(Effect.provideService(TableStorage, storage)),

        existing: (orders) =>
          Effect.gen(function*() {
            // Other writers' versions too: the question is what the table holds now.
            return yield* existingRows(yield* latest("refresh"), orders)
          }).pipe(Effect.provideService(TableStorage, storage)),

        commitBatch: (parts) =>
          Effect.gen(function*() {
            const started = Date.now()
            let snapshot = yield* latest("if-stale")
            const checkPositions = (held: Snapshot) =>
              Effect.forEach(parts, (part) => {
                const at = tablePositions(held, part.topic).get(part.partition)?.nextOffset ?? 0n
                return at === part.from ? Effect.void : new CommitConflict({
                  version: held.version,
                  detail: `partition ${part.partition} is at offset ${at} in the table; this batch read it from ${part.from}`
                })
              }, { discard: true })
            yield* checkPositions(snapshot)
            // Changes (logical capture) replace their orders' rows: per partition, each order's last
            // state is written with the partition's new rows, and every file holding an older row of
            // one of them is rewritten without it. An order's changes all come from one partition.
            const changed = new Set<number>()
            const rowsOf = parts.map((part) => {
              if (part.changes === undefined || part.changes.length === 0) return part.ordersByDate
              const byDate = new Map([...part.ordersByDate].map(([date, orders]) => [date, [...orders]]))
              for (const [id, order] of netChanges(part.changes)) {
                changed.add(id)
                if (order === null) continue
                const date = utcDate(order.created_at)
                const group = byDate.get(date)
                if (group === undefined) byDate.set(date, [order])
                else group.push(order)
              }
              return byDate
            })
            const files: Array<Effect.Effect.Success<ReturnType<typeof writeFiles>>[number]> = []
            const removeWritten = Effect.suspend(() =>
              Effect.forEach(files, (f) => storage.remove(f.add.add.path).pipe(Effect.ignore), { discard: true })
            )
            for (const [i, part] of parts.entries()) {
              files.push(
                ...(yield* writeFiles(part.topic, part.partition, part.firstOffset, part.lastOffset, rowsOf[i]!).pipe(
                  Effect.tapError(() => removeWritten)
                ))
              )
            }
            if (files.length > 0) yield* crashPoint("consumer.after-lake-files")
            // The partitions this commit moves: a commit by another writer that moved any of them
            // between our snapshot and our version (a new owner after a rebalance) wins, and ours is
            // refused whole. Compactions never touch txns, so they never conflict with a plain append.
            const owners = new Map<string, number>()
            for (const part of parts) for (const appId of partitionAppIds(part.topic, part.partition)) owners.set(appId, part.partition)
            for (let rebase = 0;; rebase++) {
              const now = Date.now()
              const { before, rewrites } = changed.size === 0
                ? { rewrites: [], before: new Map<number, Order>() }
                : yield* rewriteWithout(snapshot, changed, now).pipe(Effect.tapError(() => removeWritten))
              const removed = new Set(rewrites.map((r) => r.old.path))
              const removeRewritten = Effect.forEach(
                rewrites.flatMap((r) => (r.path === null ? [] : [r.path])),
                (path) => storage.remove(path).pipe(Effect.ignore),
                { discard: true }
              )
              // A file we rewrite that another writer removed first (a compaction merged it, another
              // consumer rewrote it) is no conflict of positions: plan again on top of theirs.
              let lostFile: string | undefined
              const attempt = yield* commit(snapshot, {
                actions: [
                  ...rewrites.flatMap((r) => r.actions),
                  ...files.map((f) => f.add),
                  ...parts.flatMap((part) => positionTxns(part.topic, part.partition, part.position, now))
                ],
                operation: changed.size === 0 ? "STREAMING UPDATE" : "MERGE",
                operationParameters: {
                  outputMode: changed.size === 0 ? "Append" : "Update",
                  epochId: parts.map((part) => `${part.partition}:${part.position.nextOffset}`).join(","),
                  ...(changed.size === 0 ? {} : { predicate: JSON.stringify(["order_id"]) })
                },
                isBlindAppend: removed.size === 0,
                conflictsWith: (winner) => {
                  for (const action of winner) {
                    if ("txn" in action && owners.has(action.txn.appId)) {
                      return `another writer committed partition ${owners.get(action.txn.appId)} (${action.txn.appId} = ${action.txn.version})`
                    }
                    if ("remove" in action && removed.has(action.remove.path)) {
                      lostFile = action.remove.path
                      return `another writer removed ${action.remove.path}, which this batch rewrites`
                    }
                  }
                  return undefined
                }
              }).pipe(Effect.either)
              if (Either.isRight(attempt)) {
                // Ours went on top of the newest version there was: the snapshot is current as of the start.
                confirmedAt = Math.max(confirmedAt, started)
                yield* afterCommit(attempt.right.snapshot)
                yield* crashPoint("consumer.after-commit")
                return {
                  version: attempt.right.version,
                  files: files.map((f) => f.written),
                  rewritten: rewrites.length,
                  rowsReplaced: rewrites.reduce((n, r) => n + r.dropped, 0),
                  before
                }
              }
              // Ours are in no version: remove them now rather than leave them to vacuum.
              yield* removeRewritten
              const error = attempt.left
              if (error._tag === "CommitConflict" && lostFile !== undefined && rebase < maxRebases) {
                yield* Metric.increment(lakeRewriteRebases)
                snapshot = yield* latest("refresh")
                yield* checkPositions(snapshot).pipe(Effect.tapError(() => removeWritten))
                continue
              }
              if (error._tag === "CommitConflict") yield* removeWritten
              return yield* error
            }
          }).pipe(
            Effect.provideService(TableStorage, storage),
            Effect.withSpan("Lake.commitBatch", { attributes: { partitions: parts.map((p) => p.partition).join(",") } })
          ),

        setMaintenance: (on) => Effect.sync(() => {
          maintaining = on
        })
      })
    })
  )
