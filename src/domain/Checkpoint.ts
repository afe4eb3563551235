import { Schema } from "effect"
import { CaptureKey } from "./CaptureKey.ts"

/** Where the consumer stands in one Kafka partition. */
export const PartitionProgress = Schema.Struct({
  /** The next offset to read: everything below is in the lake (or dead-lettered). */
  next_offset: Schema.BigInt,
  /**
   * The highest capture key written from this partition. The producer publishes in capture-key
   * order and an order always hashes to the same partition, so a key at or below this one is a
   * re-publication (producer crashed before saving its cursor) and is skipped.
   */
  last_key: Schema.NullOr(CaptureKey)
})
export type PartitionProgress = typeof PartitionProgress.Type

export const Checkpoint = Schema.Struct({
  topic: Schema.String,
  partitions: Schema.Record({ key: Schema.String, value: PartitionProgress })
})
export type Checkpoint = typeof Checkpoint.Type
