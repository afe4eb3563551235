import { Context, type Effect } from "effect"
import type { StorageError } from "./errors.ts"

export interface StoredObject {
  /** Relative to the table root, with `/` separators. */
  readonly path: string
  readonly size: number
  /** Milliseconds since the epoch. */
  readonly modified: number
}

/**
 * Where a table's files live: a directory or an object-store prefix. All paths are relative to the
 * table root. The table code needs only whole-object reads and writes, listing, and one atomic
 * primitive: put-if-absent, which is what makes a log version written once, by one writer.
 */
export class TableStorage extends Context.Tag("TableStorage")<TableStorage, {
  /** Where the table is, for messages and for engines that read the files (a directory or URL). */
  readonly root: string
  /** The location of one file for an outside reader (DuckDB): an absolute path or URL. */
  readonly locate: (path: string) => string
  /** The object's bytes and modification time, or null when it does not exist. */
  readonly read: (path: string) => Effect.Effect<{ readonly bytes: Uint8Array; readonly modified: number } | null, StorageError>
  /** Writes the whole object so that readers see all of it or none of it; replaces what was there. */
  readonly write: (path: string, bytes: Uint8Array) => Effect.Effect<void, StorageError>
  /**
   * Writes the object only if nothing exists at `path`, atomically against every other writer.
   * False when something was there (the object is then left as it was).
   */
  readonly writeIfAbsent: (path: string, bytes: Uint8Array) => Effect.Effect<boolean, StorageError>
  /** Every object whose path starts with `prefix` (`""`: the whole table), in no particular order. */
  readonly list: (prefix: string) => Effect.Effect<ReadonlyArray<StoredObject>, StorageError>
  /** Removes the object; a missing object is not an error. */
  readonly remove: (path: string) => Effect.Effect<void, StorageError>
  /**
   * A local file holding the object, for readers that only open local files (DuckDB without httpfs):
   * the file itself on a filesystem, a cached download for an object store. Data files are
   * immutable, so a cached copy stays valid. Fails when the object does not exist.
   */
  readonly localPath: (path: string) => Effect.Effect<string, StorageError>
}>() {}
