import { Effect, Metric } from "effect"
import { type ChangeOp, changeOps } from "../domain/Change.ts"

/** Metrics of logical capture (capture.mode logical); exported by the producer's /metrics like the rest. */

/** Tagged with `op` (insert, update, delete, snapshot). */
export const changesCaptured = Metric.counter("capture_changes_captured_total", {
  description: "Changes of the captured table received from the replication slot (op snapshot: rows read from the initial snapshot), by op",
  incremental: true
})
/** Tagged with `op`. */
export const changesPublished = Metric.counter("capture_changes_published_total", {
  description: "Changes acknowledged by Kafka, by op",
  incremental: true
})
export const rowsSkipped = Metric.counter("capture_rows_skipped_total", {
  description: "Rows of the captured table that are not orders (e.g. created_at NULL), logged and not published",
  incremental: true
})
export const slotRetainedBytes = Metric.gauge("capture_slot_retained_wal_bytes", {
  description: "WAL the replication slot keeps on the server: pg_current_wal_lsn() - restart_lsn, at the last check"
})
export const slotUnconfirmedBytes = Metric.gauge("capture_slot_unconfirmed_wal_bytes", {
  description: "WAL written since the slot's confirmed position: pg_current_wal_lsn() - confirmed_flush_lsn, at the last check"
})
export const captureLagSeconds = Metric.gauge("capture_lag_seconds", {
  description: "Seconds since the newest point the producer has confirmed to the slot: the commit time of the last transaction " +
    "published and acknowledged, or the emission time of the last heartbeat it received (every capture.heartbeat_seconds), " +
    "whichever is newer. Grows while capture falls behind or stalls; up to heartbeat_seconds when idle"
})

/**
 * The per-op series, tagged once: a counter tagged per change would build and look up its key on
 * every change of the stream.
 */
const perOp = (counter: Metric.Metric.Counter<number>) =>
  Object.fromEntries(changeOps.map((op) => [op, counter.pipe(Metric.tagged("op", op))])) as Record<ChangeOp, Metric.Metric.Counter<number>>
export const capturedByOp = perOp(changesCaptured)
export const publishedByOp = perOp(changesPublished)

/** Every op's series at 0 before its first change, so `increase()` sees the first one too. */
export const registerCaptureOps = Effect.forEach(
  changeOps,
  (op) => Effect.zipRight(Metric.incrementBy(capturedByOp[op], 0), Metric.incrementBy(publishedByOp[op], 0)),
  { discard: true }
)
