import { Duration, Effect, Metric, MetricBoundaries } from "effect"
import type { RejectReason } from "../domain/Rejection.ts"

/** Seconds buckets from 5 ms to ~40 s: commit-to-lake latency spans the sub-second goal and the 5 s polls of old. */
const latencyBuckets = MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 14 })
const durationBuckets = MetricBoundaries.exponential({ start: 0.001, factor: 2, count: 16 })

export const ordersCaptured = Metric.counter("orders_captured_total", {
  description: "Orders read from PostgreSQL by the producer",
  incremental: true
})
export const ordersPublished = Metric.counter("orders_published_total", {
  description: "Orders acknowledged by Kafka",
  incremental: true
})
export const producerCursorSeconds = Metric.gauge("producer_cursor_created_at_seconds", {
  description: "created_at of the producer's cursor, as Unix seconds"
})
/** Alerts compare it with the cursor: orders committed but not captured. */
export const sourceNewestSeconds = Metric.gauge("producer_source_newest_created_at_seconds", {
  description: "created_at of the newest order in the source table, as Unix seconds, at the last read"
})
/** The capture horizon waits for the oldest open transaction; this is how long it has waited. */
export const captureHeldBackSeconds = Metric.gauge("producer_capture_held_back_seconds", {
  description: "Age of the oldest open transaction in the source database, which capture waits for (0: none), at the last read"
})
export const captureCycleSeconds = Metric.histogram("producer_cycle_duration_seconds", durationBuckets, "Duration of a capture cycle")
export const publishBatchSeconds = Metric.histogram("producer_publish_duration_seconds", durationBuckets, "Duration of one publish to Kafka")

export const ordersConsumed = Metric.counter("orders_consumed_total", {
  description: "Messages read from the raw topic",
  incremental: true
})
export const ordersWritten = Metric.counter("orders_written_total", {
  description: "Orders written to the lake",
  incremental: true
})
export const ordersDuplicates = Metric.counter("orders_duplicates_skipped_total", {
  description: "Re-published orders skipped by the consumer",
  incremental: true
})
/** Tagged with `reason`. */
export const ordersDeadLettered = Metric.counter("orders_dead_lettered_total", {
  description: "Messages sent to the dead-letter topic, by reason",
  incremental: true
})
/** Every reason, so each series exists (at 0) before its first dead letter: `increase()` then sees that one too. */
const rejectReasons: Readonly<Record<RejectReason, null>> = {
  empty_value: null,
  value_too_large: null,
  invalid_utf8: null,
  invalid_json: null,
  invalid_schema: null,
  null_order_id: null,
  null_created_at: null,
  negative_amount: null,
  invalid_change: null,
  invalid_row: null
}
export const registerDeadLetterReasons = Effect.forEach(
  Object.keys(rejectReasons),
  (reason) => Metric.incrementBy(ordersDeadLettered.pipe(Metric.tagged("reason", reason)), 0),
  { discard: true }
)
export const lakeFilesWritten = Metric.counter("lake_files_written_total", {
  description: "Parquet files committed to the table by the stream",
  incremental: true
})
export const lakeTableVersion = Metric.gauge("lake_table_version", {
  description: "The newest version of the lake's Delta table this consumer knows"
})
export const lakeLiveFiles = Metric.gauge("lake_live_files", {
  description: "Data files in the table's newest version known to this consumer (all date partitions)"
})
export const lakeRewriteRebases = Metric.counter("lake_rewrite_rebases_total", {
  description: "Batches of changes whose copy-on-write was planned again because another writer (the compactor, another consumer) removed a file they rewrite first",
  incremental: true
})
export const lakeCompactions = Metric.counter("lake_compactions_total", {
  description: "Compaction commits (merges of small files) made by this consumer",
  incremental: true
})
/** Another writer committed the same Kafka partition first: a second consumer, or a stale one. */
export const lakeCommitConflicts = Metric.counter("lake_commit_conflicts_total", {
  description: "Batches refused because another writer had committed their partition first",
  incremental: true
})
/** Tagged with `partition`. */
export const consumerLag = Metric.gauge("consumer_lag_messages", {
  description: "Messages in the topic not yet in the lake, per partition"
})
/** Tagged with `partition`. */
export const consumerNextOffset = Metric.gauge("consumer_next_offset", {
  description: "The table's position: next offset to read, per partition"
})
export const consumerBatchSeconds = Metric.histogram("consumer_batch_duration_seconds", durationBuckets, "Duration of one lake batch")
export const commitToLakeSeconds = Metric.histogram(
  "order_commit_to_lake_seconds",
  latencyBuckets,
  "From an order's created_at (its transaction's start) to its lake file being in place"
)

/** 1 while /health answers 200 (every check readiness needs is ok), else 0. */
export const healthReady = Metric.gauge("health_ready", {
  description: "1 when the program is ready (/health answers 200), 0 when not"
})
/** Tagged with `dependency` (database, broker, lake). */
export const healthCheckOk = Metric.gauge("health_check_ok", {
  description: "1 when the last operation on the dependency succeeded, 0 when it failed; absent until the program first used it"
})

/** Records how long an effect took, in seconds, into a histogram. */
export const timedSeconds = (histogram: Metric.Metric.Histogram<number>) =>
  Metric.trackDurationWith(histogram, (duration) => Duration.toMillis(duration) / 1000)
