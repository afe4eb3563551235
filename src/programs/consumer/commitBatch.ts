import { Effect, Metric } from "effect"
import type { OrderChange } from "../../domain/Change.ts"
import { type Order, orderToJson } from "../../domain/Order.ts"
import { utcDate } from "../../domain/Timestamp.ts"
import type { RejectReason } from "../../domain/Rejection.ts"
import { reportHealth } from "../../observability/Health.ts"
import {
  commitToLakeSeconds,
  lakeFilesWritten,
  ordersConsumed,
  ordersDeadLettered,
  ordersDuplicates,
  ordersWritten
} from "../../observability/metrics.ts"
import { crashPoint } from "../../runtime/crashPoints.ts"
import { DeadLetters } from "../../services/DeadLetters.ts"
import { Lake, type PartitionPosition } from "../../services/Lake.ts"
import { stepRetry } from "../../runtime/schedules.ts"
import { settleForeign, type Split } from "./split.ts"

export interface BatchOutcome {
  /** Per partition of the batch, its new position. */
  readonly positions: ReadonlyMap<number, PartitionPosition>
  readonly version: number | null
  readonly messages: number
  readonly written: number
  readonly duplicates: number
  readonly deadLettered: Readonly<Partial<Record<RejectReason, number>>>
  readonly files: number
}

/**
 * Other clients' orders of every split, against the table and against what earlier splits of the
 * batch hold (the same row published to two partitions is written once).
 */
const settleAllForeign = Effect.fn("Consumer.settleForeign")(function*(splits: ReadonlyArray<Split>) {
  if (splits.every((split) => split.foreign.length === 0)) return
  const lake = yield* Lake
  const seen = new Set(yield* lake.existing(splits.flatMap((split) => split.foreign)))
  const dates = new Set(splits.flatMap((split) => split.foreign.map((o) => utcDate(o.created_at))))
  for (const split of splits) {
    settleForeign(split, seen)
    for (const date of dates) for (const order of split.byDate.get(date) ?? []) seen.add(orderToJson(order))
  }
})

/**
 * One batch: dead letters first, then one table commit holding every partition's files and new
 * position. A crash before the commit leaves the positions where they were and the batch is redone
 * (its files, in no version, are invisible and vacuumed later); dead letters may then be published
 * twice, orders never. CommitConflict when another consumer moved any of the partitions: nothing of
 * the batch is in the table.
 */
export const commitBatch = Effect.fn("Consumer.commitBatch")(function*(splits: ReadonlyArray<Split>) {
  const lake = yield* Lake
  const deadLetters = yield* DeadLetters
  yield* settleAllForeign(splits)
  const dead = splits.flatMap((split) => split.dead)
  if (dead.length > 0) {
    yield* deadLetters.publish(dead).pipe(
      Effect.retry(stepRetry),
      Effect.tapError((error) => reportHealth("broker", { ok: false, error: error.message }))
    )
    yield* crashPoint("consumer.after-dead-letters")
  }
  const moved = splits.filter((split) => split.nextOffset !== split.from)
  const positions = new Map<number, PartitionPosition>(
    moved.map((split) => [split.partition, { nextOffset: split.nextOffset, lastCaptureKey: split.lastCaptureKey, lastChangeKey: split.lastChangeKey }])
  )
  let version: number | null = null
  let files = 0
  if (moved.length > 0) {
    const committed = yield* lake.commitBatch(moved.map((split) => ({
      topic: split.topic,
      partition: split.partition,
      from: split.from,
      firstOffset: split.firstOffset ?? split.from,
      lastOffset: split.lastOffset ?? split.from,
      position: positions.get(split.partition)!,
      ordersByDate: split.byDate,
      changes: split.changes
    }))).pipe(
      Effect.tapBoth({
        onFailure: (error) => error._tag === "CommitConflict" ? Effect.void : reportHealth("lake", { ok: false, error: error.message }),
        onSuccess: () => reportHealth("lake", { ok: true })
      })
    )
    version = committed.version
    files = committed.files.length
    for (const split of moved) recordLatencies(split.byDate, split.changes)
  }
  const deadLettered: Partial<Record<RejectReason, number>> = {}
  for (const letter of dead) deadLettered[letter.rejection.reason] = (deadLettered[letter.rejection.reason] ?? 0) + 1
  const sum = (f: (split: Split) => number) => splits.reduce((n, split) => n + f(split), 0)
  const messages = sum((s) => s.messages)
  const written = sum((s) => s.written)
  const duplicates = sum((s) => s.duplicates)
  for (const split of splits) if (split.stale > 0) yield* warnStale(split)
  yield* recordBatchMetrics(messages, written, duplicates, files, deadLettered)
  return { positions, version, messages, written, duplicates, deadLettered, files } satisfies BatchOutcome
})

/**
 * Changes of an older epoch than the partition's: a producer of a slot since replaced (re-snapshot,
 * failover) still publishing. Dropped, and said so: should the new slot's epoch ever be the lower one
 * (a producer clock far behind), this is where its changes would be going.
 */
const warnStale = (split: Split) =>
  Effect.logWarning("changes of an older capture epoch dropped (a producer of a replaced slot still publishing?)").pipe(
    Effect.annotateLogs({ topic: split.topic, partition: split.partition, stale: split.stale, epoch: split.lastChangeKey?.epoch ?? 0 })
  )

/** Per order, but without an Effect per order: this runs for every row at full throughput. */
const recordLatencies = (byDate: ReadonlyMap<string, ReadonlyArray<Order>>, changes: ReadonlyArray<OrderChange>) => {
  const nowMicros = BigInt(Date.now()) * 1000n
  for (const orders of byDate.values()) {
    for (const order of orders) commitToLakeSeconds.unsafeUpdate(Number(nowMicros - order.created_at) / 1e6, [])
  }
  // A change's own commit, not its order's creation: an update of an old order is not hours late.
  for (const change of changes) {
    if (change.commitTime !== null) commitToLakeSeconds.unsafeUpdate(Number(nowMicros - change.commitTime) / 1e6, [])
  }
}

const recordBatchMetrics = (
  messages: number,
  written: number,
  duplicates: number,
  files: number,
  deadLettered: Partial<Record<RejectReason, number>>
) =>
  Effect.all([
    Metric.incrementBy(ordersConsumed, messages),
    Metric.incrementBy(ordersWritten, written),
    Metric.incrementBy(ordersDuplicates, duplicates),
    Metric.incrementBy(lakeFilesWritten, files),
    ...Object.entries(deadLettered).map(([reason, n]) =>
      Metric.incrementBy(ordersDeadLettered.pipe(Metric.tagged("reason", reason)), n)
    )
  ], { discard: true })
