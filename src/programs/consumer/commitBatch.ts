import { Effect, Metric } from "effect"
import type { Order } from "../../domain/Order.ts"
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
  readonly position: PartitionPosition
  readonly version: number | null
  readonly messages: number
  readonly written: number
  readonly duplicates: number
  readonly deadLettered: Readonly<Partial<Record<RejectReason, number>>>
  readonly files: number
}

/**
 * One batch: dead letters first, then one table commit holding the batch's files and the
 * partition's new position. A crash before the commit leaves the position where it was and the
 * batch is redone (its files, in no version, are invisible and vacuumed later); dead letters may
 * then be published twice, orders never.
 */
export const commitBatch = Effect.fn("Consumer.commitBatch")(function*(split: Split) {
  const lake = yield* Lake
  const deadLetters = yield* DeadLetters
  if (split.foreign.length > 0) settleForeign(split, yield* lake.existing(split.foreign))
  const position: PartitionPosition = { nextOffset: split.nextOffset, lastCaptureKey: split.lastCaptureKey }
  if (split.dead.length > 0) {
    yield* deadLetters.publish(split.dead).pipe(
      Effect.retry(stepRetry),
      Effect.tapError((error) => reportHealth("broker", { ok: false, error: error.message }))
    )
    yield* crashPoint("consumer.after-dead-letters")
  }
  let version: number | null = null
  let files = 0
  if (split.nextOffset !== split.from) {
    const committed = yield* lake.commitBatch({
      topic: split.topic,
      partition: split.partition,
      from: split.from,
      firstOffset: split.firstOffset ?? split.from,
      lastOffset: split.lastOffset ?? split.from,
      position,
      ordersByDate: split.byDate
    }).pipe(
      Effect.tapBoth({
        onFailure: (error) => error._tag === "CommitConflict" ? Effect.void : reportHealth("lake", { ok: false, error: error.message }),
        onSuccess: () => reportHealth("lake", { ok: true })
      })
    )
    version = committed.version
    files = committed.files.length
    recordLatencies(split.byDate)
  }
  const deadLettered: Partial<Record<RejectReason, number>> = {}
  for (const letter of split.dead) deadLettered[letter.rejection.reason] = (deadLettered[letter.rejection.reason] ?? 0) + 1
  yield* recordBatchMetrics(split.messages, split.written, split.duplicates, files, deadLettered)
  return {
    position,
    version,
    messages: split.messages,
    written: split.written,
    duplicates: split.duplicates,
    deadLettered,
    files
  } satisfies BatchOutcome
})

/** Per order, but without an Effect per order: this runs for every row at full throughput. */
const recordLatencies = (byDate: ReadonlyMap<string, ReadonlyArray<Order>>) => {
  const nowMicros = BigInt(Date.now()) * 1000n
  for (const orders of byDate.values()) {
    for (const order of orders) commitToLakeSeconds.unsafeUpdate(Number(nowMicros - order.created_at) / 1e6, [])
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
