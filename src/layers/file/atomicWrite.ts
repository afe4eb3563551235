import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { StorageError } from "../../services/errors.ts"

let counter = 0

/** A hidden temporary name next to the target, so lake globs such as `*.parquet` never see it. */
export const temporaryPathFor = (target: string) =>
  Path.join(Path.dirname(target), `.${Path.basename(target)}.${process.pid}.${++counter}.tmp`)

export const isTemporaryName = (name: string) => name.startsWith(".") && name.endsWith(".tmp")

/**
 * Writes `data` to `target` so that readers see the old file or the whole new one, never a part:
 * write a temporary file, fsync it, rename it over the target, fsync the directory so the rename
 * survives a power cut.
 */
export const writeFileAtomic = (target: string, data: Uint8Array | string) =>
  Effect.tryPromise({
    try: async () => {
      const dir = Path.dirname(target)
      await Fs.mkdir(dir, { recursive: true })
      const temporary = temporaryPathFor(target)
      try {
        const handle = await Fs.open(temporary, "w")
        try {
          await handle.writeFile(data)
          await handle.sync()
        } finally {
          await handle.close()
        }
        await Fs.rename(temporary, target)
      } catch (error) {
        // A full disk must not also fill up with half-written temporaries, one per retry.
        await Fs.rm(temporary, { force: true }).catch(() => undefined)
        throw error
      }
      const dirHandle = await Fs.open(dir, "r")
      try {
        await dirHandle.sync()
      } finally {
        await dirHandle.close()
      }
    },
    catch: (cause) => new StorageError({ path: target, operation: "write", cause })
  })

/** The file's text, or null when it does not exist. */
export const readFileIfExists = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      try {
        return await Fs.readFile(path, "utf8")
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return null
        throw error
      }
    },
    catch: (cause) => new StorageError({ path, operation: "read", cause })
  })
