import { Context, Effect, Either, Layer, Metric, Scope } from "effect"
import type { Order } from "../../domain/Order.ts"
import { partitionOfOrder } from "../../domain/orderPartition.ts"
import { utcDate } from "../../domain/Timestamp.ts"
import { lakeRewriteRebases } from "../../observability/metrics.ts"
import { crashPoint } from "../../runtime/crashPoints.ts"
import type { StorageError } from "../../services/errors.ts"
import { type ChangeAt, Lake, type LakeBatch, type PartitionPosition } from "../../services/Lake.ts"
import { TableStorage } from "../../services/TableStorage.ts"
import type { Action } from "../../table/actions.ts"
import { type ChangeRow, changesFormat } from "../../table/changesTable.ts"
import { commit, nothingCommitted } from "../../table/commit.ts"
import { storagePathOf, streamFilePath } from "../../table/dataPaths.ts"
import { existingRows } from "../../table/existingRows.ts"
import { checkWritable } from "../../table/openTable.ts"
import { partitionAppIds, positionTxns, tablePositions } from "../../table/positions.ts"
import { loadSnapshot } from "../../table/readLog.ts"
import { findRows, netChanges, rewriteWithout } from "../../table/rewrite.ts"
import type { Snapshot } from "../../table/snapshot.ts"
import { ordersFormat } from "../../table/tableFormat.ts"
import { CommitConflict } from "../../table/tableErrors.ts"
import { type DeltaTable, openDeltaTable, type TableSettings } from "./deltaTable.ts"

export { tableConfiguration, type TableSettings } from "./deltaTable.ts"

/** Times a batch of changes plans its rewrites again after a compaction or another consumer took a file first. */
const maxRebases = 20

/**
 * Where a partition stands for reading: the lower of the two tables' positions (the history is
 * committed first, so a crash between the two commits leaves it ahead). A partition the history
 * has no position for has not started there: the orders table's position counts.
 */
const combinedPositions = (orders: ReadonlyMap<number, PartitionPosition>, history: ReadonlyMap<number, PartitionPosition>) => {
  const out = new Map(orders)
  for (const [partition, h] of history) {
    const o = orders.get(partition)
    if (o !== undefined && h.nextOffset < o.nextOffset) out.set(partition, h)
  }
  return out as ReadonlyMap<number, PartitionPosition>
}

/**
 * The history rows of a partition's changes from `from` on: each change with the order's columns
 * after it; a delete (a tombstone) with the order's last state before it, from earlier changes of the
 * batch or else from the orders table (`before`), so that the history says what was deleted. A
 * truncate is one row (order_id 0, no order columns), written from partition 0's marker only: every
 * partition has one, and the table was emptied once.
 */
const historyRows = (changes: ReadonlyArray<ChangeAt>, from: bigint, before: ReadonlyMap<number, Order>, partition: number) => {
  const last = new Map<number, Order>()
  const byDate = new Map<string, Array<ChangeRow>>()
  let emptied = false
  for (const change of changes) {
    if (change.op === "truncate") {
      last.clear()
      emptied = true
      if (partition !== 0) continue
    }
    const row = change.order ?? last.get(change.orderId) ?? (emptied ? undefined : before.get(change.orderId)) ?? null
    if (change.order !== null) last.set(change.orderId, change.order)
    else last.delete(change.orderId)
    if (change.offset < from) continue
    const date = row !== null ? utcDate(row.created_at) : change.commitTime !== null ? utcDate(change.commitTime) : "1970-01-01"
    const entry: ChangeRow = {
      order_id: change.orderId,
      op: change.op,
      commit_lsn: change.key.lsn,
      change_seq: change.key.seq,
      commit_ts: change.commitTime,
      xid: change.xid,
      customer_name: row?.customer_name ?? null,
      restaurant_name: row?.restaurant_name ?? null,
      item: row?.item ?? null,
      amount: row?.amount ?? null,
      order_status: row?.order_status ?? null,
      created_at: row?.created_at ?? null
    }
    const group = byDate.get(date)
    if (group === undefined) byDate.set(date, [entry])
    else group.push(entry)
  }
  return byDate
}

/** The txn app ids a commit of these parts moves, to the partition of each. */
const ownersOf = (parts: ReadonlyArray<LakeBatch>) => {
  const owners = new Map<string, number>()
  for (const part of parts) for (const appId of partitionAppIds(part.topic, part.partition)) owners.set(appId, part.partition)
  return owners
}

const txnConflict = (owners: ReadonlyMap<string, number>, action: Action): string | undefined =>
  "txn" in action && owners.has(action.txn.appId)
    ? `another writer committed partition ${owners.get(action.txn.appId)} (${action.txn.appId} = ${action.txn.version})`
    : undefined

/**
 * The Lake as Delta tables on TableStorage: the orders table (each order's current state) and, once
 * changes of logical capture arrive, the change history `order_changes` beside it (`history`: its
 * storage). Each table holds its own positions; a batch commits the history first, then the orders,
 * and each takes only the messages past its own position, so a crash between the two commits leaves
 * nothing twice and nothing out.
 */
export const deltaLake = (settings: TableSettings, history?: Layer.Layer<TableStorage, StorageError>) =>
  Layer.scoped(
    Lake,
    Effect.gen(function*() {
      const storage = yield* TableStorage
      const scope = yield* Effect.scope
      const upkeep = yield* Effect.makeSemaphore(1)
      const orders = yield* openDeltaTable(storage, settings, ordersFormat, true, upkeep)
      let maintaining = true
      const historyStorage = history === undefined
        ? undefined
        : Context.get(yield* Layer.buildWithScope(history, scope), TableStorage)
      let changes: DeltaTable<ChangeRow> | undefined
      /**
       * Whether the history was found absent since positions were last read. A poll-mode batch then
       * does not look for it again (a log listing per batch, a LIST request on S3): one another
       * consumer creates meanwhile holds no position for our partitions yet, which reads as "not
       * started" (combinedPositions), and our first change opens it.
       */
      let knownAbsent = false
      /** The history table, opened (created) when `create`, else only if it exists. */
      const historyTable = (create: boolean) =>
        Effect.gen(function*() {
          if (changes !== undefined || historyStorage === undefined) return changes
          if (!create && knownAbsent) return undefined
          if (!create && (yield* loadSnapshot().pipe(Effect.provideService(TableStorage, historyStorage))).version < 0) {
            knownAbsent = true
            return undefined
          }
          changes = yield* openDeltaTable(historyStorage, settings, changesFormat, false, upkeep)
            .pipe(Scope.extend(scope))
          changes.setMaintenance(maintaining)
          return changes
        })
      yield* historyTable(false)

      /** Commits the history rows of the parts' changes, each from the history's own position. */
      const commitHistory = (parts: ReadonlyArray<LakeBatch>, ordersAt: ReadonlyMap<number, bigint>, before: ReadonlyMap<number, Order>) =>
        Effect.gen(function*() {
          const table = yield* historyTable(parts.some((part) => (part.changes?.length ?? 0) > 0))
          if (table === undefined) return
          const started = Date.now()
          const snapshot = yield* table.latest("if-stale")
          const held = tablePositions(snapshot, parts[0]!.topic)
          const fromOf = new Map(parts.map((part) => [part, held.get(part.partition)?.nextOffset ?? ordersAt.get(part.partition) ?? part.from]))
          const moving = parts.filter((part) => fromOf.get(part)! < part.position.nextOffset)
          if (moving.length === 0) return
          const staged: Array<Effect.Effect.Success<ReturnType<typeof table.writeFiles>>[number]> = []
          const removeStaged = Effect.suspend(() => Effect.forEach(staged, (f) => table.storage.remove(storagePathOf(f.add.add.path, table.storage.root)).pipe(Effect.ignore), { discard: true }))
          for (const part of moving) {
            const from = fromOf.get(part)!
            const rows = historyRows(part.changes ?? [], from, before, part.partition)
            staged.push(...(yield* table.writeFiles((dir) => streamFilePath(dir, part.topic, part.partition, from, part.lastOffset), rows).pipe(
              Effect.tapError(() => removeStaged)
            )))
          }
          const owners = ownersOf(moving)
          const now = Date.now()
          const done = yield* commit(snapshot, {
            actions: [...staged.map((f) => f.add), ...moving.flatMap((part) => positionTxns(part.topic, part.partition, part.position, now))],
            operation: "STREAMING UPDATE",
            operationParameters: { outputMode: "Append", epochId: moving.map((part) => `${part.partition}:${part.position.nextOffset}`).join(",") },
            isBlindAppend: true,
            format: changesFormat,
            conflictsWith: (winner) => {
              for (const action of winner) {
                const reason = txnConflict(owners, action)
                if (reason !== undefined) return reason
              }
              return undefined
            }
          }).pipe(Effect.provideService(TableStorage, table.storage), Effect.tapError((error) => nothingCommitted(error) ? removeStaged : Effect.void))
          yield* table.committed(done.snapshot, started)
          yield* crashPoint("consumer.after-history-commit")
        })

      return Lake.of({
        positions: (topic) =>
          Effect.gen(function*() {
            const fresh = yield* orders.latest("refresh")
            yield* checkWritable(fresh).pipe(Effect.provideService(TableStorage, storage))
            knownAbsent = false
            const table = yield* historyTable(false)
            if (table === undefined) return tablePositions(fresh, topic)
            const held = yield* table.latest("refresh")
            yield* checkWritable(held, changesFormat).pipe(Effect.provideService(TableStorage, table.storage))
            return combinedPositions(tablePositions(fresh, topic), tablePositions(held, topic))
          }),

        existing: (wanted) =>
          Effect.gen(function*() {
            // Other writers' versions too: the question is what the table holds now.
            return yield* existingRows(yield* orders.latest("refresh"), wanted)
          }).pipe(Effect.provideService(TableStorage, storage)),

        commitBatch: (parts) =>
          Effect.gen(function*() {
            const started = Date.now()
            let snapshot = yield* orders.latest("if-stale")
            /**
             * Where the orders table holds each part's partition. A part of plain appends must find it
             * exactly where the batch was read from. A part of changes may find it further on (the batch
             * was read from the history's position, which was behind): it then applies only its changes
             * past the orders table's own position, each message once.
             */
            const ordersAt = (held: Snapshot) => {
              // One topic per batch (the Lake contract): its positions are read from the txns once.
              const positions = tablePositions(held, parts[0]!.topic)
              return Effect.forEach(parts, (part) => {
                const at = positions.get(part.partition)?.nextOffset ?? 0n
                const appends = [...part.ordersByDate.values()].some((rows) => rows.length > 0)
                const fine = appends || part.changes === undefined
                  ? at === part.from
                  : at >= part.from && at <= part.position.nextOffset
                return fine ? Effect.succeed([part.partition, at] as const) : new CommitConflict({
                  version: held.version,
                  detail: `partition ${part.partition} is at offset ${at} in the table; this batch read it from ${part.from}`
                })
              }).pipe(Effect.map((entries) => new Map(entries)))
            }
            let at = yield* ordersAt(snapshot)
            // Changes (logical capture) replace their orders' rows: per partition, each order's last
            // state is written with the partition's new rows, and every file holding an older row of
            // one of them is rewritten without it. An order's changes all come from one partition.
            // A truncate's marker removes every row of its partition's orders; only the changes after
            // the partition's last marker are written.
            const changed = new Set<number>()
            const deletedUnseen = new Set<number>()
            const truncated: Array<{ readonly partition: number; readonly partitions: number }> = []
            const rowsOf = parts.map((part) => {
              if (part.changes === undefined || part.changes.length === 0) return part.ordersByDate
              const from = at.get(part.partition)!
              const byDate = new Map([...part.ordersByDate].map(([date, rows]) => [date, [...rows]]))
              const seen = new Set<number>()
              for (const change of part.changes) {
                if (change.order === null && !seen.has(change.orderId)) deletedUnseen.add(change.orderId)
                seen.add(change.orderId)
              }
              const applied = part.changes.filter((change) => change.offset >= from)
              let cut = applied.length - 1
              while (cut >= 0 && applied[cut]!.op !== "truncate") cut--
              if (cut >= 0) {
                truncated.push({ partition: part.partition, partitions: applied[cut]!.partitions! })
                for (const change of applied.slice(0, cut)) if (change.op !== "truncate") changed.add(change.orderId)
              }
              for (const [id, order] of netChanges(applied.slice(cut + 1))) {
                changed.add(id)
                if (order === null) continue
                const date = utcDate(order.created_at)
                const group = byDate.get(date)
                if (group === undefined) byDate.set(date, [order])
                else group.push(order)
              }
              return byDate
            })
            // The history goes first, with what the table held of orders deleted before any other
            // change of theirs in the batch (the rows a tombstone removes).
            const deletedRows = deletedUnseen.size === 0
              ? new Map<number, Order>()
              : yield* findRows(snapshot, deletedUnseen).pipe(Effect.provideService(TableStorage, storage))
            yield* commitHistory(parts, at, deletedRows)
            const moving = parts.filter((part, i) => at.get(part.partition)! < part.position.nextOffset || [...rowsOf[i]!.values()].some((r) => r.length > 0))
            if (moving.length === 0) return { version: snapshot.version, files: [], rewritten: 0, rowsReplaced: 0, before: deletedRows }
            const files: Array<Effect.Effect.Success<ReturnType<typeof orders.writeFiles>>[number]> = []
            const removeWritten = Effect.suspend(() =>
              Effect.forEach(files, (f) => storage.remove(storagePathOf(f.add.add.path, storage.root)).pipe(Effect.ignore), { discard: true })
            )
            for (const [i, part] of parts.entries()) {
              if (!moving.includes(part)) continue
              files.push(
                ...(yield* orders.writeFiles((dir) => streamFilePath(dir, part.topic, part.partition, part.firstOffset, part.lastOffset), rowsOf[i]!)
                  .pipe(Effect.tapError(() => removeWritten)))
              )
            }
            if (files.length > 0) yield* crashPoint("consumer.after-lake-files")
            // The partitions this commit moves: a commit by another writer that moved any of them
            // between our snapshot and our version (a new owner after a rebalance) wins, and ours is
            // refused whole. Compactions never touch txns, so they never conflict with a plain append.
            const owners = ownersOf(moving)
            const emptied = truncated.length === 0
              ? undefined
              : (id: number) => truncated.some((t) => partitionOfOrder(id, t.partitions) === t.partition)
            const rewriting = changed.size > 0 || emptied !== undefined
            for (let rebase = 0;; rebase++) {
              const now = Date.now()
              const rewrite = !rewriting
                ? undefined
                : yield* rewriteWithout(snapshot, changed, now, emptied).pipe(Effect.provideService(TableStorage, storage), Effect.tapError(() => removeWritten))
              const removed = rewrite?.removed ?? new Set<string>()
              const removeRewritten = Effect.forEach(rewrite?.written ?? [], (path) => storage.remove(path).pipe(Effect.ignore), { discard: true })
              // A file we rewrite that another writer removed first (a compaction merged it, another
              // consumer rewrote it) is no conflict of positions: plan again on top of theirs.
              let lostFile: string | undefined
              const attempt = yield* commit(snapshot, {
                actions: [
                  ...(rewrite?.actions ?? []),
                  ...files.map((f) => f.add),
                  ...moving.flatMap((part) => positionTxns(part.topic, part.partition, part.position, now))
                ],
                operation: !rewriting ? "STREAMING UPDATE" : "MERGE",
                operationParameters: {
                  outputMode: !rewriting ? "Append" : "Update",
                  epochId: moving.map((part) => `${part.partition}:${part.position.nextOffset}`).join(","),
                  ...(!rewriting ? {} : { predicate: JSON.stringify(["order_id"]) })
                },
                isBlindAppend: removed.size === 0,
                format: ordersFormat,
                conflictsWith: (winner) => {
                  for (const action of winner) {
                    const reason = txnConflict(owners, action)
                    if (reason !== undefined) return reason
                    if ("remove" in action && removed.has(action.remove.path)) {
                      lostFile = action.remove.path
                      return `another writer removed ${action.remove.path}, which this batch rewrites`
                    }
                  }
                  return undefined
                }
              }).pipe(Effect.provideService(TableStorage, storage), Effect.either)
              if (Either.isRight(attempt)) {
                yield* orders.committed(attempt.right.snapshot, started)
                yield* crashPoint("consumer.after-commit")
                return {
                  version: attempt.right.version,
                  files: files.map((f) => f.written),
                  rewritten: removed.size,
                  rowsReplaced: rewrite?.dropped ?? 0,
                  before: new Map([...deletedRows, ...(rewrite?.before ?? [])])
                }
              }
              const error = attempt.left
              // A StorageError leaves the outcome unknown: the version may be ours and name these files,
              // so they stay (vacuum removes them if not). Otherwise ours are in no version: remove them now.
              if (!nothingCommitted(error)) return yield* error
              yield* removeRewritten
              if (error._tag === "CommitConflict" && lostFile !== undefined && rebase < maxRebases) {
                yield* Metric.increment(lakeRewriteRebases)
                snapshot = yield* orders.latest("refresh")
                const again = yield* ordersAt(snapshot).pipe(Effect.tapError(() => removeWritten))
                if ([...again].some(([p, offset]) => at.get(p) !== offset)) {
                  yield* removeWritten
                  return yield* new CommitConflict({ version: snapshot.version, detail: "another writer moved a partition of this batch" })
                }
                at = again
                continue
              }
              yield* removeWritten
              return yield* error
            }
          }).pipe(
            Effect.withSpan("Lake.commitBatch", { attributes: { partitions: parts.map((p) => p.partition).join(",") } })
          ),

        setMaintenance: (on) =>
          Effect.sync(() => {
            maintaining = on
            orders.setMaintenance(on)
            changes?.setMaintenance(on)
          })
      })
    })
  )
