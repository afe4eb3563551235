import { Effect, Layer } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { StorageError } from "../../services/errors.ts"
import { type StoredObject, TableStorage } from "../../services/TableStorage.ts"
import { placeDurably, writeFileAtomic } from "../file/atomicWrite.ts"

const walk = async (root: string, dir: string, out: Array<StoredObject>) => {
  let entries: Array<import("node:fs").Dirent>
  try {
    entries = await Fs.readdir(dir, { withFileTypes: true })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return
    throw error
  }
  for (const entry of entries) {
    const full = Path.join(dir, entry.name)
    if (entry.isDirectory()) {
      await walk(root, full, out)
    } else if (entry.isFile()) {
      const stat = await Fs.stat(full).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return undefined
        throw error
      })
      if (stat === undefined) continue
      out.push({ path: Path.relative(root, full).split(Path.sep).join("/"), size: stat.size, modified: stat.mtimeMs })
    }
  }
}

/**
 * A table in a local directory. Put-if-absent is `link(2)` of a fully written, fsynced temporary
 * file: the link fails with EEXIST when the name is taken, atomically, and readers never see a
 * partial file (lake-table.md: `writeFile` with flag `wx` exposes half-written commits).
 */
export const fileTableStorage = (root: string) => {
  const full = (path: string) => Path.join(root, ...path.split("/"))
  return Layer.succeed(TableStorage, TableStorage.of({
    root,
    locate: full,
    read: (path) =>
      Effect.tryPromise({
        try: async () => {
          const target = full(path)
          try {
            const [bytes, stat] = await Promise.all([Fs.readFile(target), Fs.stat(target)])
            return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), modified: stat.mtimeMs }
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOENT") return null
            throw error
          }
        },
        catch: (cause) => new StorageError({ path: full(path), operation: "read", cause })
      }),
    write: (path, bytes) => writeFileAtomic(full(path), bytes),
    writeIfAbsent: (path, bytes) =>
      Effect.tryPromise({
        try: () =>
          placeDurably(full(path), bytes, (temporary) =>
            Fs.link(temporary, full(path)).then(
              () => true,
              (error: NodeJS.ErrnoException) => {
                if (error.code === "EEXIST") return false
                throw error
              }
            )),
        catch: (cause) => new StorageError({ path: full(path), operation: "write", cause })
      }),
    list: (prefix) =>
      Effect.tryPromise({
        try: async () => {
          const slash = prefix.lastIndexOf("/")
          const start = slash < 0 ? root : full(prefix.slice(0, slash))
          const out: Array<StoredObject> = []
          await walk(root, start, out)
          return prefix === "" ? out : out.filter((o) => o.path.startsWith(prefix))
        },
        catch: (cause) => new StorageError({ path: full(prefix), operation: "list", cause })
      }),
    remove: (path) =>
      Effect.tryPromise({
        try: () => Fs.rm(full(path), { force: true }),
        catch: (cause) => new StorageError({ path: full(path), operation: "remove", cause })
      }),
    localPath: (path) =>
      Effect.tryPromise({
        try: async () => {
          const target = Path.resolve(full(path))
          await Fs.access(target)
          return target
        },
        catch: (cause) => new StorageError({ path: full(path), operation: "read", cause })
      })
  }))
}
