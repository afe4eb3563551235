import type { Duration } from "effect"

/**
 * When a lake batch (one file per date, one table commit) closes: at `maxMessages` or `maxBytes` of
 * message values, or once it has been open `linger` (light traffic: low latency), or
 * `backlogLinger` while the stream says more follows at once (a backfill: large files, few commits).
 * Changes of logical capture close it sooner, at `maxChanges`: each one replaces a row somewhere in
 * the table and adds one to the history, several times the memory of a plain append.
 */
export interface FlushPolicy {
  readonly maxMessages: number
  readonly maxChanges?: number
  readonly maxBytes: number
  readonly linger: Duration.DurationInput
  readonly backlogLinger: Duration.DurationInput
}

export interface ConsumerOptions {
  readonly topic: string
  /** Lag metrics tagged with the topic (a table captured beside the orders table). */
  readonly tagLagWithTopic?: boolean
  /** How long one poll waits for messages when no batch is open. */
  readonly pollWait: Duration.DurationInput
  readonly flush: FlushPolicy
}
