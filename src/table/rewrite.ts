import { Effect } from "effect"
import type { OrderChange } from "../domain/Change.ts"
import type { Order } from "../domain/Order.ts"
import { TableStorage } from "../services/TableStorage.ts"
import type { Action, AddFile } from "./actions.ts"
import { dateOf, rewrittenFilePath, storagePathOf } from "./dataPaths.ts"
import { OrdersFileWriter, parquetRowCount, readOrderIds, readOrdersFile } from "./ordersFile.ts"
import { OrdersStats } from "./ordersTable.ts"
import { type Snapshot, statsOf } from "./snapshot.ts"
import { TableError } from "./tableErrors.ts"

/**
 * Changes to the table's current state: per order, its row after its last change, or null when that
 * change deleted it. Applied in order, so the last change of an order wins.
 */
export const netChanges = (changes: Iterable<OrderChange>): Map<number, Order | null> => {
  const net = new Map<number, Order | null>()
  for (const change of changes) {
    // Re-inserted: the map's order then follows the last change (the rows go in that order).
    net.delete(change.orderId)
    net.set(change.orderId, change.order)
  }
  return net
}

/** Whether the sorted ids hold one in [low, high]. */
const anyWithin = (sorted: Float64Array, low: number, high: number): boolean => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! < low) lo = mid + 1
    else hi = mid
  }
  return lo < sorted.length && sorted[lo]! <= high
}

/**
 * The live files that may hold one of `ids`: every file whose order_id statistics admit one (a file
 * without them always may). Metadata only: order ids grow with time, so a stream of new orders
 * and of changes to recent ones rules out nearly every file of a long table without reading it.
 */
export const candidateFiles = (snapshot: Snapshot, ids: Iterable<number>): ReadonlyArray<AddFile> => {
  const sorted = Float64Array.from(ids).sort()
  if (sorted.length === 0) return []
  const out: Array<AddFile> = []
  for (const add of snapshot.files.values()) {
    const stats = statsOf(add)
    const low = stats?.minValues?.["order_id"]
    const high = stats?.maxValues?.["order_id"]
    if (typeof low === "number" && typeof high === "number" && !anyWithin(sorted, low, high)) continue
    out.push(add)
  }
  return out
}

/**
 * The copy-on-write of a batch: every file that held a changed order removed, and the rows they keep
 * in new files (written, not yet committed).
 */
export interface Rewrite {
  readonly actions: ReadonlyArray<Action>
  /** The files removed (their log paths): a commit that removed one first conflicts with this one. */
  readonly removed: ReadonlySet<string>
  /** The new files, as storage paths, to remove again if the commit does not happen. */
  readonly written: ReadonlyArray<string>
  /** Rows dropped from the old files: the changed orders' previous rows. */
  readonly dropped: number
  /** Those rows by order_id: what the table held before the changes. */
  readonly before: ReadonlyMap<number, Order>
}

/** Rows of one input read at a time: memory stays bounded whatever the size of the files rewritten. */
const chunkRows = 20_000

/**
 * Kept rows of several rewritten files of a date go into one new file up to this many input bytes:
 * changes to recent orders touch many small recent files, and one file per rewritten file would cost
 * a write (two fsyncs) each and leave as many small files behind.
 */
const coalesceBytes = 16 * 1024 * 1024

/**
 * Copy-on-write of the files that hold rows of `ids`: each candidate is read (its order_id column
 * first, so a file whose statistics only admitted an id costs one column), and, when it holds one,
 * its other rows are streamed, chunk by chunk, into a new file of its date partition, shared with the
 * other rewritten files of that date up to `coalesceBytes`. `emptied`: the orders a truncate removes
 * besides (every file is then a candidate; their rows are not kept in `before`).
 */
export const rewriteWithout = (snapshot: Snapshot, ids: ReadonlySet<number>, now: number, emptied?: (orderId: number) => boolean) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const before = new Map<number, Order>()
    const written: Array<string> = []
    const actions: Array<Action> = []
    const removed = new Set<string>()
    let dropped = 0
    const fail = (path: string, error: unknown) =>
      new TableError({ reason: "corrupt", path: storage.locate(path), detail: `cannot read data file: ${error instanceof Error ? error.message : String(error)}` })
    /** The new file being filled, per date partition. */
    const open = new Map<string, { writer: OrdersFileWriter; stats: OrdersStats; inputBytes: number; partitionValues: AddFile["partitionValues"] }>()
    const finish = (date: string) =>
      Effect.gen(function*() {
        const current = open.get(date)
        if (current === undefined) return
        open.delete(date)
        if (current.stats.rows === 0) return
        const bytes = current.writer.finish()
        const path = rewrittenFilePath(date)
        written.push(path)
        yield* storage.write(path, bytes)
        actions.push({
          add: {
            path,
            partitionValues: current.partitionValues,
            size: bytes.byteLength,
            modificationTime: now,
            dataChange: true,
            stats: current.stats.json()
          }
        })
      })
    const drops = emptied === undefined ? (id: number) => ids.has(id) : (id: number) => ids.has(id) || emptied(id)
    const work = Effect.gen(function*() {
      for (const add of emptied === undefined ? candidateFiles(snapshot, ids) : [...snapshot.files.values()]) {
        const path = storagePathOf(add.path, storage.root)
        const found = yield* storage.read(path)
        if (found === null) {
          return yield* new TableError({ reason: "missing", path: storage.locate(path), detail: "a live data file of the table is missing" })
        }
        const fileIds = yield* Effect.tryPromise({ try: () => readOrderIds(found.bytes), catch: (e) => fail(path, e) })
        if (!fileIds.some(drops)) continue
        const date = dateOf(add)
        const filling = open.get(date)
        if (filling !== undefined && filling.inputBytes + add.size > coalesceBytes) yield* finish(date)
        const target = open.get(date) ?? {
          writer: new OrdersFileWriter([{ key: "food_orders.rewritten", value: "copy-on-write" }]),
          stats: new OrdersStats(),
          inputBytes: 0,
          partitionValues: add.partitionValues
        }
        open.set(date, target)
        target.inputBytes += add.size
        yield* Effect.tryPromise({
          try: async () => {
            const rows = parquetRowCount(found.bytes)
            for (let start = 0; start < rows; start += chunkRows) {
              const orders = await readOrdersFile(found.bytes, start, Math.min(rows, start + chunkRows))
              const kept: Array<Order> = []
              for (const order of orders) {
                if (drops(order.order_id)) {
                  if (ids.has(order.order_id)) before.set(order.order_id, order)
                  dropped++
                } else kept.push(order)
              }
              target.writer.write(kept)
              target.stats.add(kept)
            }
          },
          catch: (e) => fail(path, e)
        })
        removed.add(add.path)
        actions.push({
          remove: {
            path: add.path,
            deletionTimestamp: now,
            dataChange: true,
            extendedFileMetadata: true,
            partitionValues: add.partitionValues,
            size: add.size
          }
        })
      }
      for (const date of [...open.keys()]) yield* finish(date)
      return { actions, removed, written, dropped, before } satisfies Rewrite
    })
    // Files of a rewrite that failed half-way are in no version: remove them now rather than leave them to vacuum.
    return yield* work.pipe(Effect.tapError(() => Effect.forEach(written, (p) => storage.remove(p).pipe(Effect.ignore), { discard: true })))
  }).pipe(Effect.withSpan("Table.rewriteWithout", { attributes: { orders: ids.size } }))

/** The rows the snapshot holds of `ids` (read-only: what a tombstone is about to remove). */
export const findRows = (snapshot: Snapshot, ids: ReadonlySet<number>) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const found = new Map<number, Order>()
    for (const add of candidateFiles(snapshot, ids)) {
      const path = storagePathOf(add.path, storage.root)
      const file = yield* storage.read(path)
      if (file === null) {
        return yield* new TableError({ reason: "missing", path: storage.locate(path), detail: "a live data file of the table is missing" })
      }
      yield* Effect.tryPromise({
        try: async () => {
          if (!(await readOrderIds(file.bytes)).some((id) => ids.has(id))) return
          // In chunks, keeping only the matches: the file may be a large compacted one.
          const rows = parquetRowCount(file.bytes)
          for (let start = 0; start < rows; start += chunkRows) {
            for (const order of await readOrdersFile(file.bytes, start, Math.min(rows, start + chunkRows))) {
              if (ids.has(order.order_id)) found.set(order.order_id, order)
            }
          }
        },
        catch: (error) =>
          new TableError({ reason: "corrupt", path: storage.locate(path), detail: `cannot read data file: ${error instanceof Error ? error.message : String(error)}` })
      })
    }
    return found as ReadonlyMap<number, Order>
  })
