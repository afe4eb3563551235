import { Effect } from "effect"
import type { OrderChange } from "../domain/Change.ts"
import type { Order } from "../domain/Order.ts"
import { TableStorage } from "../services/TableStorage.ts"
import type { Action, AddFile } from "./actions.ts"
import { logPathOf, partitionDir, partitionKeyOf, rewrittenFilePath, storagePathOf } from "./dataPaths.ts"
import { parquetRowCount, readOrderIds } from "./ordersFile.ts"
import { type Snapshot, statsOf } from "./snapshot.ts"
import { ordersFormat, type RowFileWriter, type RowKeys, type RowStats, type TableFormat } from "./tableFormat.ts"
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
 * The copy-on-write of a batch: every file that held a changed row removed, and the rows they keep
 * in new files (written, not yet committed). `Key`: the orders' order_id, or a format's key text.
 */
export interface Rewrite<Key = number, Row = Order> {
  readonly actions: ReadonlyArray<Action>
  /** The files removed (their log paths): a commit that removed one first conflicts with this one. */
  readonly removed: ReadonlySet<string>
  /** The new files, as storage paths, to remove again if the commit does not happen. */
  readonly written: ReadonlyArray<string>
  /** Rows dropped from the old files: the changed rows' previous versions (and a truncate's). */
  readonly dropped: number
  /** Those rows by key (a truncate's aside): what the table held before the changes. */
  readonly before: ReadonlyMap<Key, Row>
}

/** A format whose rows changes replace by key (TableFormat.keys). */
export type KeyedFormat<Row> = TableFormat<Row> & { readonly keys: RowKeys<Row> }

/** Rows of one input read at a time: memory stays bounded whatever the size of the files rewritten. */
const chunkRows = 20_000

/**
 * Kept rows of several rewritten files of a partition go into one new file up to this many input
 * bytes: changes to recent rows touch many small recent files, and one file per rewritten file would
 * cost a write (two fsyncs) each and leave as many small files behind.
 */
const coalesceBytes = 16 * 1024 * 1024

/** How one copy-on-write tells the rows it drops: by each file's keys, read first and alone. */
interface Matching<Key> {
  /** The keys of a file's rows, in row order (the key columns only). */
  readonly fileKeys: (bytes: Uint8Array) => Promise<ReadonlyArray<Key>>
  /** The row goes (a change replaces or deletes it, or a truncate empties it). */
  readonly drops: (key: Key) => boolean
  /** Its old row is kept in `before` (a changed key, not one a truncate removes). */
  readonly remembers: (key: Key) => boolean
}

const unreadable = (storage: TableStorage["Type"], path: string) => (error: unknown) =>
  new TableError({ reason: "corrupt", path: storage.locate(path), detail: `cannot read data file: ${error instanceof Error ? error.message : String(error)}` })

const missing = (storage: TableStorage["Type"], path: string) =>
  new TableError({ reason: "missing", path: storage.locate(path), detail: "a live data file of the table is missing" })

/** The row count of a file whose keys were read, checked against them: rows are matched to their keys by position. */
const rowsOfKeyed = (keys: ReadonlyArray<unknown>, bytes: Uint8Array): number => {
  const rows = parquetRowCount(bytes)
  if (keys.length !== rows) throw new Error(`${keys.length} keys read of ${rows} rows`)
  return rows
}

const readChunk = async <Row>(format: TableFormat<Row>, add: AddFile, bytes: Uint8Array, start: number, end: number) => {
  const rows = await format.read(bytes, start, end, add.partitionValues)
  if (rows.length !== end - start) throw new Error(`read ${rows.length} rows of [${start}, ${end})`)
  return rows
}

/**
 * Copy-on-write of `candidates`: each is read (its key columns first, so a file whose statistics
 * only admitted a key costs those columns), and, when it holds a row that goes, its other rows are
 * streamed, chunk by chunk, into a new file of its partition, shared with the other rewritten files
 * of that partition up to `coalesceBytes`.
 */
const copyOnWrite = <Row, Key>(
  snapshot: Snapshot,
  format: TableFormat<Row>,
  candidates: Iterable<AddFile>,
  matching: Matching<Key>,
  now: number
) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const columns = snapshot.metadata?.partitionColumns ?? []
    const before = new Map<Key, Row>()
    const written: Array<string> = []
    const actions: Array<Action> = []
    const removed = new Set<string>()
    let dropped = 0
    /** The new file being filled, per partition. */
    const open = new Map<string, { writer: RowFileWriter<Row>; stats: RowStats<Row>; inputBytes: number; partitionValues: AddFile["partitionValues"] }>()
    const finish = (partition: string) =>
      Effect.gen(function*() {
        const current = open.get(partition)
        if (current === undefined) return
        open.delete(partition)
        if (current.stats.rows === 0) return
        const bytes = current.writer.finish()
        const path = rewrittenFilePath(partitionDir(columns, current.partitionValues))
        written.push(path)
        yield* storage.write(path, bytes)
        actions.push({
          add: {
            path: logPathOf(path),
            partitionValues: current.partitionValues,
            size: bytes.byteLength,
            modificationTime: now,
            dataChange: true,
            stats: current.stats.json()
          }
        })
      })
    const work = Effect.gen(function*() {
      for (const add of candidates) {
        const path = storagePathOf(add.path, storage.root)
        const found = yield* storage.read(path)
        if (found === null) return yield* missing(storage, path)
        const keys = yield* Effect.tryPromise({ try: () => matching.fileKeys(found.bytes), catch: unreadable(storage, path) })
        if (!keys.some(matching.drops)) continue
        const partition = partitionKeyOf(columns, add.partitionValues)
        const filling = open.get(partition)
        if (filling !== undefined && filling.inputBytes + add.size > coalesceBytes) yield* finish(partition)
        const target = open.get(partition) ?? {
          writer: format.writer([{ key: "food_orders.rewritten", value: "copy-on-write" }]),
          stats: format.stats(),
          inputBytes: 0,
          partitionValues: add.partitionValues
        }
        open.set(partition, target)
        target.inputBytes += add.size
        yield* Effect.tryPromise({
          try: async () => {
            const rows = rowsOfKeyed(keys, found.bytes)
            for (let start = 0; start < rows; start += chunkRows) {
              const chunk = await readChunk(format, add, found.bytes, start, Math.min(rows, start + chunkRows))
              const kept: Array<Row> = []
              for (let i = 0; i < chunk.length; i++) {
                const key = keys[start + i]!
                if (matching.drops(key)) {
                  if (matching.remembers(key)) before.set(key, chunk[i]!)
                  dropped++
                } else kept.push(chunk[i]!)
              }
              target.writer.write(kept)
              target.stats.add(kept)
            }
          },
          catch: unreadable(storage, path)
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
      for (const partition of [...open.keys()]) yield* finish(partition)
      return { actions, removed, written, dropped, before } satisfies Rewrite<Key, Row>
    })
    // Files of a rewrite that failed half-way are in no version: remove them now rather than leave them to vacuum.
    return yield* work.pipe(Effect.tapError(() => Effect.forEach(written, (p) => storage.remove(p).pipe(Effect.ignore), { discard: true })))
  })

/** The rows of `candidates` whose keys `wanted` takes, by key (read-only: what a tombstone is about to remove). */
const matchingRows = <Row, Key>(format: TableFormat<Row>, candidates: Iterable<AddFile>, fileKeys: Matching<Key>["fileKeys"], wanted: (key: Key) => boolean) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const found = new Map<Key, Row>()
    for (const add of candidates) {
      const path = storagePathOf(add.path, storage.root)
      const file = yield* storage.read(path)
      if (file === null) return yield* missing(storage, path)
      yield* Effect.tryPromise({
        try: async () => {
          const keys = await fileKeys(file.bytes)
          if (!keys.some(wanted)) return
          const rows = rowsOfKeyed(keys, file.bytes)
          // In chunks, keeping only the matches: the file may be a large compacted one.
          for (let start = 0; start < rows; start += chunkRows) {
            const chunk = await readChunk(format, add, file.bytes, start, Math.min(rows, start + chunkRows))
            for (let i = 0; i < chunk.length; i++) {
              const key = keys[start + i]!
              if (wanted(key)) found.set(key, chunk[i]!)
            }
          }
        },
        catch: unreadable(storage, path)
      })
    }
    return found as ReadonlyMap<Key, Row>
  })

/**
 * Copy-on-write of the files that hold rows of `ids` (candidateFiles), into new files of their
 * date partitions. `emptied`: the orders a truncate removes besides (every file is then a candidate;
 * their rows are not kept in `before`).
 */
export const rewriteWithout = (snapshot: Snapshot, ids: ReadonlySet<number>, now: number, emptied?: (orderId: number) => boolean) =>
  copyOnWrite(snapshot, ordersFormat, emptied === undefined ? candidateFiles(snapshot, ids) : snapshot.files.values(), {
    fileKeys: readOrderIds,
    drops: emptied === undefined ? (id: number) => ids.has(id) : (id: number) => ids.has(id) || emptied(id),
    remembers: (id) => ids.has(id)
  }, now).pipe(Effect.withSpan("Table.rewriteWithout", { attributes: { orders: ids.size } }))

/** The rows the snapshot holds of `ids` (read-only: what a tombstone is about to remove). */
export const findRows = (snapshot: Snapshot, ids: ReadonlySet<number>) =>
  matchingRows(ordersFormat, candidateFiles(snapshot, ids), readOrderIds, (id: number) => ids.has(id))

/** The live files that may hold one of `keys`, by the format's statistics (RowKeys.mayHold). */
export const candidateFilesByKey = <Row>(snapshot: Snapshot, format: KeyedFormat<Row>, keys: ReadonlySet<string>): ReadonlyArray<AddFile> =>
  keys.size === 0 ? [] : [...snapshot.files.values()].filter((add) => format.keys.mayHold(add, keys))

/**
 * Copy-on-write of the files of a table of any schema that hold rows of `keys` (key texts, as
 * `format.keys.keyOf` spells them), into new files of their partitions (at the root of an
 * unpartitioned table). `emptied`: keys a truncate removes besides (every file is then read; their
 * rows are not kept in `before`).
 */
export const rewriteWithoutKeys = <Row>(
  snapshot: Snapshot,
  format: KeyedFormat<Row>,
  keys: ReadonlySet<string>,
  now: number,
  emptied?: (key: string) => boolean
) =>
  copyOnWrite(snapshot, format, emptied === undefined ? candidateFilesByKey(snapshot, format, keys) : snapshot.files.values(), {
    fileKeys: format.keys.readKeys,
    drops: emptied === undefined ? (key: string) => keys.has(key) : (key: string) => keys.has(key) || emptied(key),
    remembers: (key) => keys.has(key)
  }, now).pipe(Effect.withSpan("Table.rewriteWithoutKeys", { attributes: { table: format.name, keys: keys.size } }))

/** The rows a table of any schema holds of `keys`, by key text (read-only: what a tombstone is about to remove). */
export const findRowsByKey = <Row>(snapshot: Snapshot, format: KeyedFormat<Row>, keys: ReadonlySet<string>) =>
  matchingRows(format, candidateFilesByKey(snapshot, format, keys), format.keys.readKeys, (key: string) => keys.has(key))
