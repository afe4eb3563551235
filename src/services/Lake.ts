import { Context, type Effect } from "effect"
import type { LakeFileId } from "../domain/LakeFile.ts"
import type { Order } from "../domain/Order.ts"
import type { StorageError } from "./errors.ts"

export interface WrittenFile {
  readonly path: string
  readonly date: string
  readonly rows: number
  readonly bytes: number
}

/** The date-partitioned Parquet lake. */
export class Lake extends Context.Tag("Lake")<Lake, {
  /**
   * Writes one file per date for a batch, each durable and renamed into place before it returns.
   * Writing the same batch again replaces its files with identical ones.
   */
  readonly writeBatch: (
    batch: LakeFileId,
    ordersByDate: ReadonlyMap<string, ReadonlyArray<Order>>
  ) => Effect.Effect<ReadonlyArray<WrittenFile>, StorageError>
  /**
   * Removes files of a topic partition that start at or after `fromOffset` (written after the
   * last checkpoint by a run that died), and stray temporary files. Returns how many went.
   */
  readonly discardUncommitted: (
    topic: string,
    partition: number,
    fromOffset: bigint
  ) => Effect.Effect<number, StorageError>
}>() {}
