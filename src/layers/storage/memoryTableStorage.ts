import { Effect, Layer, Ref } from "effect"
import { TableStorage } from "../../services/TableStorage.ts"

export interface MemoryObject {
  readonly bytes: Uint8Array
  readonly modified: number
}

export type MemoryObjects = Ref.Ref<ReadonlyMap<string, MemoryObject>>

export const makeMemoryObjects = Ref.make<ReadonlyMap<string, MemoryObject>>(new Map())

/** A table held in a Ref, for unit tests of the table code and the programs above it. */
export const memoryTableStorage = (objects: MemoryObjects) =>
  Layer.succeed(TableStorage, TableStorage.of({
    root: "memory:",
    locate: (path) => `memory:${path}`,
    read: (path) => Ref.get(objects).pipe(Effect.map((all) => all.get(path) ?? null)),
    // Wall-clock times, as a filesystem gives: the table's retention compares them with Date.now().
    write: (path, bytes) => Ref.update(objects, (all) => new Map(all).set(path, { bytes, modified: Date.now() })),
    writeIfAbsent: (path, bytes) =>
      Ref.modify(objects, (all) => all.has(path) ? [false, all] : [true, new Map(all).set(path, { bytes, modified: Date.now() })]),
    list: (prefix) =>
      Ref.get(objects).pipe(Effect.map((all) =>
        [...all].filter(([path]) => path.startsWith(prefix)).map(([path, o]) => ({
          path,
          size: o.bytes.byteLength,
          modified: o.modified
        }))
      )),
    remove: (path) => Ref.update(objects, (all) => {
      const next = new Map(all)
      next.delete(path)
      return next
    })
  }))
