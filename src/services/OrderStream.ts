import { Context, type Duration, type Effect } from "effect"
import type { BrokerError } from "./errors.ts"

export interface RawMessage {
  readonly offset: bigint
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: Readonly<Record<string, string>>
}

/** Consecutive messages of one partition; `messages` may be empty when only offsets moved. */
export interface MessageBatch {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<RawMessage>
  /** The offset after the last message of this batch. */
  readonly nextOffset: bigint
}

export interface BatchFill {
  readonly linger: Duration.DurationInput
  readonly maxBytes: number
}

/** Reads the raw topic from positions the consumer chooses. */
export class OrderStream extends Context.Tag("OrderStream")<OrderStream, {
  /** The first offset not yet written in each partition (the high watermark), for draining once. */
  readonly endOffsets: Effect.Effect<ReadonlyMap<number, bigint>, BrokerError>
  /**
   * The next batch at or after the given positions (partitions without one start at the earliest
   * offset), or null when nothing arrives before `maxWait`. At most `maxMessages` per batch. With
   * `fill`, once the first messages are in hand, keeps adding what arrives for up to `linger`, until
   * `maxMessages` or `maxBytes` of values: bigger files under load, bounded extra latency.
   */
  readonly poll: (
    from: ReadonlyMap<number, bigint>,
    maxMessages: number,
    maxWait: Duration.DurationInput,
    fill?: BatchFill
  ) => Effect.Effect<MessageBatch | null, BrokerError>
  /** Tells the broker how far the consumer got (for lag tooling; our checkpoint file is the truth). */
  readonly commit: (positions: ReadonlyMap<number, bigint>) => Effect.Effect<void, BrokerError>
}>() {}
