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
    write: (path, bytes) =>
      Effect.flatMap(Effect.clockWith((c) => c.currentTimeMillis), (now) =>
        Ref.update(objects, (all) => new Map(all).set(path, { bytes, modified: now }))),
    writeIfAbsent: (path, bytes) =>
      Effect.flatMap(Effect.clockWith((c) => c.currentTimeMillis), (now) =>
        Ref.modify(objects, (all) =>
          all.has(path) ? [false, all] : [true, new Map(all).set(path, { bytes, modified: now })])),
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
