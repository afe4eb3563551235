/**
 * The sample format's tables (sampleFormat.ts) written through the real table code: DeltaTable's
 * writeFiles, commit, compaction and copy-on-write, on any TableStorage.
 */
import { Effect } from "effect"
import { openDeltaTable } from "../../src/layers/lake/deltaTable.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import type { Action } from "../../src/table/actions.ts"
import { commit } from "../../src/table/commit.ts"
import { storagePathOf, streamFilePath } from "../../src/table/dataPaths.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import type { TableFormat } from "../../src/table/tableFormat.ts"
import { memoryTableSettings } from "./memoryTable.ts"
import type { SampleRow } from "./sampleFormat.ts"

type Storage = TableStorage["Type"]

/** Opens (creates) the format's table on `storage`, without maintenance. */
export const openSample = (storage: Storage, format: TableFormat<SampleRow>) =>
  Effect.gen(function*() {
    const upkeep = yield* Effect.makeSemaphore(1)
    return yield* openDeltaTable(storage, memoryTableSettings, format, false, upkeep)
  })

let offset = 0n

/** Files of `rows`, one per region (writeFiles), written but not committed: their adds. */
export const stageRows = (storage: Storage, format: TableFormat<SampleRow>, rows: ReadonlyArray<SampleRow>) =>
  Effect.gen(function*() {
    const table = yield* openSample(storage, format)
    const byRegion = new Map<string | null, Array<SampleRow>>()
    for (const row of rows) byRegion.set(row.region, [...(byRegion.get(row.region) ?? []), row])
    const first = offset
    offset += BigInt(rows.length)
    const staged = yield* table.writeFiles((dir) => streamFilePath(dir, "sample", 0, first, offset - 1n), byRegion)
    return { table, staged }
  })

/** One version appending `rows` grouped by their region, as a stream's batch would. */
export const appendRows = (storage: Storage, format: TableFormat<SampleRow>, rows: ReadonlyArray<SampleRow>) =>
  Effect.gen(function*() {
    const { staged, table } = yield* stageRows(storage, format, rows)
    const done = yield* commitActions(storage, format, staged.map((f) => f.add), yield* table.latest("refresh"))
    return { staged, version: done.snapshot.version }
  })

export const commitActions = (
  storage: Storage,
  format: TableFormat<SampleRow>,
  actions: ReadonlyArray<Action>,
  at?: Effect.Effect.Success<ReturnType<typeof loadSnapshot>>
) =>
  Effect.gen(function*() {
    const snapshot = at ?? (yield* loadSnapshot())
    return yield* commit(snapshot, { actions, operation: "WRITE", format, conflictsWith: () => undefined })
  }).pipe(Effect.provideService(TableStorage, storage))

/** The table's live files (log paths, in commit order) and their rows, partition values filled in from the log. */
export const sampleFiles = (storage: Storage, format: TableFormat<SampleRow>) =>
  Effect.gen(function*() {
    const snapshot = yield* loadSnapshot()
    const out = new Map<string, { readonly partitionValues: Readonly<Record<string, string | null>>; readonly rows: ReadonlyArray<SampleRow> }>()
    const adds = [...snapshot.files.values()].sort((a, b) => a.modificationTime - b.modificationTime || (a.path < b.path ? -1 : 1))
    for (const add of adds) {
      const found = yield* storage.read(storagePathOf(add.path, storage.root))
      if (found === null) return yield* Effect.die(`missing ${add.path}`)
      out.set(add.path, { partitionValues: add.partitionValues, rows: yield* Effect.promise(() => format.read(found.bytes, undefined, undefined, add.partitionValues)) })
    }
    return out
  }).pipe(Effect.provideService(TableStorage, storage), Effect.orDie)

/** Every row of the table, sorted by key: what a reader sees whatever the files. */
export const sampleRows = (storage: Storage, format: TableFormat<SampleRow>) =>
  sampleFiles(storage, format).pipe(
    Effect.map((files) => [...files.values()].flatMap((f) => f.rows).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.n - b.n)))
  )

