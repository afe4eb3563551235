import { Context, type Duration, type Effect } from "effect"
import type { BrokerError } from "./errors.ts"

export interface RawMessage {
  readonly offset: bigint
  readonly key: Uint8Array | null
  readonly value: Uint8Array | null
  readonly headers: Readonly<Record<string, string>>
  /** One header as text, without turning every header into text (the Kafka layer's messages do it lazily). */
  readonly header?: (name: string) => string | undefined
}

export const headerOf = (message: RawMessage, name: string): string | undefined =>
  message.header !== undefined ? message.header(name) : message.headers[name]

/** Consecutive messages of one partition; `messages` may be empty when only offsets moved. */
export interface MessageBatch {
  readonly topic: string
  readonly partition: number
  readonly messages: ReadonlyArray<RawMessage>
  /** The offset after the last message of this batch. */
  readonly nextOffset: bigint
  /**
   * More messages follow at once: the producer flagged a backlog on the last one (`backlogHeader`),
   * or the partition already held more when this batch was fetched. The consumer's flush policy
   * then keeps its lake batch open longer, for large files during a backfill.
   */
  readonly backlog: boolean
}

/**
 * The header the producer sets, in a batch that filled its read, on the batch's last message for
 * each partition: more orders were waiting in the source, and the next batch follows at once.
 */
export const backlogHeader = "capture_backlog"

/**
 * The header our producer puts on every order: its capture key, `<created_at ISO>#<order_id>`. The
 * consumer's skip rule trusts it only when it names the order in the value.
 */
export const captureKeyHeader = "capture_key"

export const captureKeyText = (createdAtIso: string, orderId: number) => `${createdAtIso}#${orderId}`

/**
 * The partitions this consumer owns. Consumers of one group share the topic's partitions; a
 * rebalance (a consumer joined, left, or was evicted for missing its session timeout) moves some,
 * and bumps `generation`. A partition that came back may have been committed by another owner in
 * between: on a new generation the consumer re-reads its positions from the table.
 */
export interface Assignment {
  readonly generation: number
  readonly partitions: ReadonlySet<number>
}

/** Reads the raw topic from positions the consumer chooses. */
export class OrderStream extends Context.Tag("OrderStream")<OrderStream, {
  /** The first offset not yet written in each partition (the high watermark), for draining once. */
  readonly endOffsets: Effect.Effect<ReadonlyMap<number, bigint>, BrokerError>
  /** The current assignment; `generation` 0 with no partitions until the group assigned some. */
  readonly assignment: Effect.Effect<Assignment>
  /**
   * The next messages at or after the given positions (partitions without one start at the
   * earliest offset), as they arrived from the broker, at most `maxMessages`; or null when nothing
   * arrives before `maxWait`. Positions behind what was handed out rewind the stream to them. Only
   * partitions of the current assignment: what was fetched for a revoked one is dropped.
   */
  readonly poll: (
    from: ReadonlyMap<number, bigint>,
    maxMessages: number,
    maxWait: Duration.DurationInput
  ) => Effect.Effect<MessageBatch | null, BrokerError>
  /** Tells the broker how far the consumer got (for lag tooling; the table's positions are the truth), for the partitions it owns. */
  readonly commit: (positions: ReadonlyMap<number, bigint>) => Effect.Effect<void, BrokerError>
}>() {}
