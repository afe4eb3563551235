import { Data } from "effect"

/**
 * The table itself is wrong or beyond us, as opposed to the storage failing (StorageError): a
 * damaged log file, a gap in versions, a feature we do not implement. Always names the file.
 */
export class TableError extends Data.TaggedError("TableError")<{
  readonly reason: "corrupt" | "unsupported" | "missing" | "schema"
  /** The file (or table root) the problem is in. */
  readonly path: string
  readonly detail: string
}> {
  override get message() {
    return `delta table ${this.reason}: ${this.path}: ${this.detail}`
  }
}

/**
 * Another writer committed first, and what it did cannot be combined with ours: it moved the same
 * Kafka partition's position (a second consumer, or a zombie's view of it), or removed files our
 * compaction was replacing. Nothing of ours was committed.
 */
export class CommitConflict extends Data.TaggedError("CommitConflict")<{
  readonly version: number
  readonly detail: string
}> {
  override get message() {
    return `commit conflict at version ${this.version}: ${this.detail}`
  }
}
