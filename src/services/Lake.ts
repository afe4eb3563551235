import { Context, type Effect } from "effect"
import type { CaptureKey } from "../domain/CaptureKey.ts"
import type { ChangeKey, OrderChange } from "../domain/Change.ts"
import type { Order } from "../domain/Order.ts"
import type { CommitConflict, TableError } from "../table/tableErrors.ts"
import type { StorageError } from "./errors.ts"

/** Where the table says a Kafka partition stands: everything below `nextOffset` is in it (or was dead-lettered). */
export interface PartitionPosition {
  readonly nextOffset: bigint
  /**
   * The highest capture key (producer header `capture_key`) taken from this partition. Our producer
   * publishes in capture-key order, so a producer message at or below it is a re-publication of a
   * message already handled (the producer crashed before saving its cursor).
   */
  readonly lastCaptureKey: CaptureKey | null
  /**
   * The highest change key (logical capture, header `change_key`) applied from this partition. The
   * producer publishes each partition's changes in change-key order, so a change at or below it is a
   * re-delivery of one applied already.
   */
  readonly lastChangeKey: ChangeKey | null
}

/** One partition's part of a lake batch: its files (one per date) and its new position. */
export interface LakeBatch {
  readonly topic: string
  readonly partition: number
  /** The position the batch was read from: the commit is refused if the table moved past it meanwhile. */
  readonly from: bigint
  readonly firstOffset: bigint
  readonly lastOffset: bigint
  readonly position: PartitionPosition
  /** Orders appended as they are (poll capture: each order once, never updated). */
  readonly ordersByDate: ReadonlyMap<string, ReadonlyArray<Order>>
  /**
   * Changes applied in this order (logical capture): the table ends up holding each order's state
   * after its last change, or no row for it after a delete.
   */
  readonly changes?: ReadonlyArray<ChangeAt>
}

/** A change and the offset of its message (each table takes only the messages past its own position). */
export interface ChangeAt extends OrderChange {
  readonly offset: bigint
}

export interface WrittenFile {
  readonly path: string
  readonly date: string
  readonly rows: number
  readonly bytes: number
}

export interface Committed {
  readonly version: number
  readonly files: ReadonlyArray<WrittenFile>
  /** Files rewritten without rows that changes replaced or deleted (copy-on-write), and rows dropped from them. */
  readonly rewritten: number
  readonly rowsReplaced: number
  /** Rows the table held for changed orders before this commit, by order_id (a delete's history needs them). */
  readonly before: ReadonlyMap<number, Order>
}

export type LakeError = StorageError | TableError

/**
 * A table we may not write (a feature, property or constraint another writer turned on; columns not
 * ours): waiting does not fix it, so a program stops with it instead of retrying.
 */
export const isPermanentLakeError = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "TableError" &&
  ((error as TableError).reason === "unsupported" || (error as TableError).reason === "schema")

/** The orders table (a Delta Lake table): the consumer's positions and its batches, committed together. */
export class Lake extends Context.Tag("Lake")<Lake, {
  /** Per partition of the topic, the position the table holds (partitions it never saw are absent). */
  readonly positions: (topic: string) => Effect.Effect<ReadonlyMap<number, PartitionPosition>, LakeError>
  /**
   * Writes the files of every partition's part (one per partition and date) and commits them with
   * each partition's new position, as one version. CommitConflict when another writer moved any of
   * these partitions first: nothing of the batch is in the table, and the caller must re-read its
   * positions. Parts are of one topic, one per partition. A part's `changes` replace or delete the
   * rows of their orders wherever the table holds them (rewriting the files that do).
   */
  readonly commitBatch: (parts: ReadonlyArray<LakeBatch>) => Effect.Effect<Committed, LakeError | CommitConflict>
  /**
   * Whether this writer checkpoints, compacts and vacuums the table (compaction and vacuum when its
   * settings let it at all). Several consumers share one table: one of them maintains it at a time
   * (see consume.ts). On by default.
   */
  readonly setMaintenance: (on: boolean) => Effect.Effect<void>
  /**
   * Which of these orders the table's current version holds already, as identical rows (given as
   * `orderToJson` text). Reads only the files whose statistics admit one of them.
   */
  readonly existing: (orders: ReadonlyArray<Order>) => Effect.Effect<ReadonlySet<string>, LakeError>
}>() {}
