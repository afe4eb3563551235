import { Effect, Layer, Ref } from "effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { StorageError } from "../../services/errors.ts"
import { TableStorage } from "../../services/TableStorage.ts"

export interface MemoryObject {
  readonly bytes: Uint8Array
  readonly modified: number
}

export type MemoryObjects = Ref.Ref<ReadonlyMap<string, MemoryObject>>

export const makeMemoryObjects = Ref.make<ReadonlyMap<string, MemoryObject>>(new Map())

/** A table held in a Ref, for unit tests of the table code and the programs above it. */
export const memoryTableStorage = (objects: MemoryObjects) => {
  // Per layer, so two memory tables never share spilled files.
  let spillDir: Promise<string> | undefined
  return Layer.succeed(TableStorage, TableStorage.of({
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
    }),
    // Written out on every call: a memory object may be replaced, unlike a data file in a real table.
    localPath: (path) =>
      Ref.get(objects).pipe(Effect.flatMap((all) => {
        const object = all.get(path)
        return Effect.tryPromise({
          try: async () => {
            if (object === undefined) throw new Error("no such object")
            const dir = await (spillDir ??= Fs.mkdtemp(Path.join(Os.tmpdir(), "memory-table-")))
            const target = Path.join(dir, ...path.split("/"))
            await Fs.mkdir(Path.dirname(target), { recursive: true })
            await Fs.writeFile(target, object.bytes)
            return target
          },
          catch: (cause) => new StorageError({ path: `memory:${path}`, operation: "read", cause })
        })
      }))
  }))
}
