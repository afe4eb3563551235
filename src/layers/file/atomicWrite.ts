import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { StorageError } from "../../services/errors.ts"

let counter = 0

/** A hidden temporary name next to the target, so lake globs such as `*.parquet` never see it. */
export const temporaryPathFor = (target: string) =>
  Path.join(Path.dirname(target), `.${Path.basename(target)}.${process.pid}.${++counter}.tmp`)

export const isTemporaryName = (name: string) => name.startsWith(".") && name.endsWith(".tmp")

export const syncDirectory = async (dir: string) => {
  const handle = await Fs.open(dir, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Writes `data` fully and durably under a temporary name next to `target`, then lets `place` put it
 * at the target (rename, or link for put-if-absent) and fsyncs the directory so that survives a power
 * cut. The temporary file never outlives the call: a full disk must not also fill up with
 * half-written temporaries, one per retry. Returns what `place` returns.
 */
export const placeDurably = async <A>(target: string, data: Uint8Array | string, place: (temporary: string) => Promise<A>): Promise<A> => {
  const dir = Path.dirname(target)
  await Fs.mkdir(dir, { recursive: true })
  const temporary = temporaryPathFor(target)
  let placed: A
  try {
    const handle = await Fs.open(temporary, "w")
    try {
      await handle.writeFile(data)
      await handle.sync()
    } finally {
      await handle.close()
    }
    placed = await place(temporary)
  } finally {
    await Fs.rm(temporary, { force: true }).catch(() => undefined)
  }
  await syncDirectory(dir)
  return placed
}

/**
 * Writes `data` to `target` so that readers see the old file or the whole new one, never a part:
 * a temporary file, fsynced, renamed over the target.
 */
export const writeFileAtomic = (target: string, data: Uint8Array | string) =>
  Effect.tryPromise({
    try: () => placeDurably(target, data, (temporary) => Fs.rename(temporary, target)),
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
