import { Effect, Layer } from "effect"
import type { Order } from "../../src/domain/Order.ts"
import { deltaLake, type TableSettings } from "../../src/layers/lake/deltaLake.ts"
import { type MemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { storagePathOf } from "../../src/table/dataPaths.ts"
import { readOrdersFile } from "../../src/table/ordersFile.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"

export const memoryTableSettings: TableSettings = {
  checkpointInterval: 100,
  retention: "60 minutes",
  maintenance: false,
  legacy: { topic: "orders_raw", checkpoint: Effect.succeed(undefined) }
}

/** The real Delta table code over objects held in memory. */
export const memoryLakeLayer = (objects: MemoryObjects, settings: Partial<TableSettings> = {}, history?: MemoryObjects) =>
  deltaLake({ ...memoryTableSettings, ...settings }, history === undefined ? undefined : memoryTableStorage(history)).pipe(
    Layer.provide(memoryTableStorage(objects))
  )

/** The table's current version as its live files (path relative to the root) and their rows, in commit order. */
export const liveFileRows = Effect.gen(function*() {
  const storage = yield* TableStorage
  const snapshot = yield* loadSnapshot()
  const out = new Map<string, ReadonlyArray<Order>>()
  const adds = [...snapshot.files.values()].sort((a, b) => a.modificationTime - b.modificationTime || (a.path < b.path ? -1 : 1))
  for (const add of adds) {
    const found = yield* storage.read(storagePathOf(add.path, storage.root))
    out.set(add.path, yield* Effect.promise(() => readOrdersFile(found!.bytes)))
  }
  return out
})

/** liveFileRows of a table held in memory. */
export const tableFiles = (objects: MemoryObjects) =>
  liveFileRows.pipe(Effect.provide(memoryTableStorage(objects)), Effect.orDie)
