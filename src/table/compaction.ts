import { Effect } from "effect"
import { crashPoint } from "../runtime/crashPoints.ts"
import { TableStorage } from "../services/TableStorage.ts"
import type { Action, AddFile } from "./actions.ts"
import { commit, nothingCommitted } from "./commit.ts"
import { compactedFilePath, logPathOf, partitionDir, partitionKeyOf, partitionValueOf, storagePathOf } from "./dataPaths.ts"
import { parquetRowCount } from "./ordersFile.ts"
import { ordersFormat, type TableFormat } from "./tableFormat.ts"
import type { Snapshot } from "./snapshot.ts"
import { TableError } from "./tableErrors.ts"

export interface CompactionSettings {
  /** A merged file stops growing here; files at least this large are left alone. */
  readonly targetFileBytes: number
  /** A size tier of a date partition is merged once it holds this many files. */
  readonly fanIn: number
  /**
   * A date partition that has had no new file for this long (yesterday's, once the day is over; any
   * partition once traffic stops) is merged whole: its small files into as few as the target allows.
   */
  readonly idleMs: number
}

/** Files below this size all share the lowest tier. */
const tierBase = 64 * 1024

const tierOf = (size: number, fanIn: number) =>
  size < tierBase ? 0 : 1 + Math.floor(Math.log(size / tierBase) / Math.log(fanIn))

/** Files in commit order: the order their rows went in, which a merge keeps. */
const byAge = (a: AddFile, b: AddFile) => a.modificationTime - b.modificationTime || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

export interface CompactionGroup {
  /** The partition's values, one per partition column in the table's order ({} unpartitioned); null: the null partition. */
  readonly partitionValues: Readonly<Record<string, string | null>>
  readonly files: ReadonlyArray<AddFile>
}

/** A file's partition, as its group names it: the table's columns only, "" and absent read as null. */
const partitionOf = (columns: ReadonlyArray<string>, add: AddFile): Record<string, string | null> =>
  Object.fromEntries(columns.map((column) => [column, partitionValueOf(add.partitionValues, column)]))

/** For logs and spans: `date=2025-01-15`, or `/` for the whole of an unpartitioned table. */
export const partitionLabel = (values: Readonly<Record<string, string | null>>): string =>
  partitionDir(Object.keys(values), values).replace(/\/$/, "") || "/"

/** OPTIMIZE's predicate in commitInfo, as Spark spells one per partition column (`date = '2025-01-15'`). */
const predicateOf = (values: Readonly<Record<string, string | null>>): ReadonlyArray<string> =>
  Object.entries(values).map(([column, value]) =>
    value === null ? `${column} IS NULL` : `${column} = '${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`
  )

/**
 * Size-tiered compaction: streaming commits make many tiny files; once `fanIn` files of one size
 * tier pile up in a date partition, they become one file of the next tier. Every row is rewritten
 * about once per tier (a handful of times in all), and a partition holds at most
 * (fanIn - 1) files per tier plus its full-size files, however long the stream runs. When nothing
 * is left to do by tiers, partitions that went quiet are merged whole, so a past day ends up in as
 * few files as the target size allows.
 */
export const planCompaction = (snapshot: Snapshot, settings: CompactionSettings, now = Date.now()): ReadonlyArray<CompactionGroup> => {
  const tiered = planTiers(snapshot, settings)
  return tiered.length > 0 ? tiered : planIdle(snapshot, settings, now)
}

/** Merges of partitions gone quiet: all their files below the target, oldest first, in target-sized groups. */
const planIdle = (snapshot: Snapshot, settings: CompactionSettings, now: number): ReadonlyArray<CompactionGroup> => {
  const columns = snapshot.metadata?.partitionColumns ?? []
  const partitions = new Map<string, { small: Array<AddFile>; newest: number }>()
  for (const add of snapshot.files.values()) {
    const key = partitionKeyOf(columns, add.partitionValues)
    const entry = partitions.get(key) ?? { small: [], newest: 0 }
    partitions.set(key, entry)
    entry.newest = Math.max(entry.newest, add.modificationTime)
    if (add.size < settings.targetFileBytes) entry.small.push(add)
  }
  const groups: Array<CompactionGroup> = []
  for (const [, { small, newest }] of [...partitions].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (small.length < 2 || now - newest < settings.idleMs) continue
    small.sort(byAge)
    const partitionValues = partitionOf(columns, small[0]!)
    let picked: Array<AddFile> = []
    let bytes = 0
    for (const file of small) {
      if (picked.length >= 2 && bytes + file.size > settings.targetFileBytes) {
        groups.push({ partitionValues, files: picked })
        picked = []
        bytes = 0
      }
      picked.push(file)
      bytes += file.size
    }
    if (picked.length >= 2) groups.push({ partitionValues, files: picked })
  }
  return groups
}

const planTiers = (snapshot: Snapshot, settings: CompactionSettings): ReadonlyArray<CompactionGroup> => {
  const columns = snapshot.metadata?.partitionColumns ?? []
  const tiers = new Map<string, Array<AddFile>>()
  for (const add of snapshot.files.values()) {
    if (add.size >= settings.targetFileBytes) continue
    const key = `${partitionKeyOf(columns, add.partitionValues)}\u0000${tierOf(add.size, settings.fanIn)}`
    const group = tiers.get(key)
    if (group === undefined) tiers.set(key, [add])
    else group.push(add)
  }
  const groups: Array<CompactionGroup & { key: string }> = []
  for (const [key, files] of tiers) {
    if (files.length < settings.fanIn) continue
    files.sort(byAge)
    const picked: Array<AddFile> = []
    let bytes = 0
    for (const file of files) {
      if (picked.length >= 2 && bytes + file.size > settings.targetFileBytes) break
      picked.push(file)
      bytes += file.size
    }
    groups.push({ key: key.split("\u0000")[0]!, partitionValues: partitionOf(columns, picked[0]!), files: picked })
  }
  return groups.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map(({ files, partitionValues }) => ({ partitionValues, files }))
}

/** Rows read from one input at a time, so memory stays bounded whatever the file sizes. */
const chunkRows = 100_000

/**
 * Merges a group into one file and commits the swap (`remove` + `add`, dataChange=false, so
 * streaming readers skip it). Rows keep their order. A crash before the commit leaves an
 * unreferenced file for vacuum; after it, the table reads exactly as before, in fewer files.
 * Conflicts only with another writer that removed one of the same files first.
 */
export const compactGroup = (snapshot: Snapshot, group: CompactionGroup, format: TableFormat<any> = ordersFormat) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const writer = format.writer([{ key: "food_orders.compacted_from", value: String(group.files.length) }])
    const stats = format.stats()
    let expectedRows = 0
    for (const file of group.files) {
      const path = storagePathOf(file.path, storage.root)
      const found = yield* storage.read(path)
      if (found === null) {
        return yield* new TableError({ reason: "missing", path: storage.locate(path), detail: "a live data file of the table is missing" })
      }
      yield* Effect.tryPromise({
        try: async () => {
          const rows = parquetRowCount(found.bytes)
          for (let start = 0; start < rows; start += chunkRows) {
            const chunk = await format.read(found.bytes, start, Math.min(rows, start + chunkRows))
            writer.write(chunk)
            stats.add(chunk)
          }
          expectedRows += rows
        },
        catch: (error) =>
          new TableError({ reason: "corrupt", path: storage.locate(path), detail: `cannot read data file: ${error instanceof Error ? error.message : String(error)}` })
      })
    }
    if (stats.rows !== expectedRows) {
      return yield* new TableError({ reason: "corrupt", path: storage.root, detail: `merge read ${stats.rows} rows, the files hold ${expectedRows}` })
    }
    const bytes = writer.finish()
    const path = compactedFilePath(partitionDir(Object.keys(group.partitionValues), group.partitionValues))
    yield* storage.write(path, bytes)
    yield* crashPoint("compactor.after-merged-file")
    const now = Date.now()
    const removed = new Set(group.files.map((f) => f.path))
    const actions: Array<Action> = [
      ...group.files.map((f): Action => ({
        remove: {
          path: f.path,
          deletionTimestamp: now,
          dataChange: false,
          extendedFileMetadata: true,
          partitionValues: f.partitionValues,
          size: f.size
        }
      })),
      {
        add: {
          path: logPathOf(path),
          partitionValues: group.partitionValues,
          size: bytes.byteLength,
          modificationTime: now,
          dataChange: false,
          stats: stats.json()
        }
      }
    ]
    const committed = yield* commit(snapshot, {
      actions,
      operation: "OPTIMIZE",
      format,
      operationParameters: { predicate: JSON.stringify(predicateOf(group.partitionValues)), zOrderBy: "[]", auto: "true" },
      conflictsWith: (winner) => {
        const gone = winner.find((a) => "remove" in a && removed.has(a.remove.path))
        return gone === undefined ? undefined : `another writer removed ${(gone as { remove: { path: string } }).remove.path}`
      }
    }).pipe(
      // Nothing of ours is in the log: the merged file is an orphan right now, not in a day. Not on
      // a StorageError: the commit may have landed, naming the file (vacuum takes it if not).
      Effect.tapError((error) => nothingCommitted(error) ? storage.remove(path).pipe(Effect.ignore) : Effect.void)
    )
    yield* crashPoint("compactor.after-commit")
    return { ...committed, path, rows: stats.rows, bytes: bytes.byteLength, inputs: group.files.length }
  }).pipe(Effect.withSpan("Table.compact", { attributes: { partition: partitionLabel(group.partitionValues), files: group.files.length } }))
