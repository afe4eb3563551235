import { type Duration, Effect, Either, Metric, Schedule } from "effect"
import { type CaptureKey, compareKeys, keyOf } from "../domain/CaptureKey.ts"
import type { Checkpoint, PartitionProgress } from "../domain/Checkpoint.ts"
import { decodeAndClean } from "../domain/Cleaning.ts"
import type { Order } from "../domain/Order.ts"
import type { RejectReason } from "../domain/Rejection.ts"
import { utcDate } from "../domain/Timestamp.ts"
import { reportHealth } from "../observability/Health.ts"
import {
  commitToLakeSeconds,
  consumerBatchSeconds,
  consumerLag,
  consumerNextOffset,
  lakeFilesWritten,
  ordersConsumed,
  ordersDeadLettered,
  ordersDuplicates,
  ordersWritten,
  timedSeconds
} from "../observability/metrics.ts"
import { crashPoint } from "../runtime/crashPoints.ts"
import { CheckpointStore } from "../services/CheckpointStore.ts"
import { type DeadLetter, DeadLetters } from "../services/DeadLetters.ts"
import { Lake } from "../services/Lake.ts"
import { type BatchFill, type MessageBatch, OrderStream } from "../services/OrderStream.ts"
import { onceBackoff, outageBackoff, stepRetry } from "./schedules.ts"

export interface ConsumerOptions {
  readonly topic: string
  readonly maxBatchMessages: number
  readonly pollWait: Duration.DurationInput
  /** The flush policy: how long a batch may wait for more messages, and its size cap in bytes. */
  readonly fill?: BatchFill
}

export interface BatchOutcome {
  readonly checkpoint: Checkpoint
  readonly messages: number
  readonly written: number
  readonly duplicates: number
  readonly deadLettered: Readonly<Partial<Record<RejectReason, number>>>
  readonly files: number
}

const progressOf = (checkpoint: Checkpoint, partition: number): PartitionProgress =>
  checkpoint.partitions[String(partition)] ?? { next_offset: 0n, last_key: null }

export const positionsOf = (checkpoint: Checkpoint): ReadonlyMap<number, bigint> =>
  new Map(Object.entries(checkpoint.partitions).map(([p, progress]) => [Number(p), progress.next_offset]))

/**
 * Splits a batch into orders for the lake (grouped by UTC date), dead letters, and re-published
 * duplicates. Pure: the same batch and checkpoint always give the same split, which is what makes
 * re-processing after a crash produce identical files.
 */
export const splitBatch = (batch: MessageBatch, progress: PartitionProgress) => {
  const byDate = new Map<string, Array<Order>>()
  const dead: Array<DeadLetter> = []
  let lastKey: CaptureKey | null = progress.last_key
  let duplicates = 0
  let written = 0
  const fresh = batch.messages.filter((m) => m.offset >= progress.next_offset)
  for (const message of fresh) {
    const decoded = decodeAndClean(message.value)
    if (Either.isLeft(decoded)) {
      dead.push({ source: { topic: batch.topic, partition: batch.partition }, message, rejection: decoded.left })
      continue
    }
    const order = decoded.right
    const key = keyOf(order)
    if (lastKey !== null && compareKeys(key, lastKey) <= 0) {
      duplicates += 1
      continue
    }
    lastKey = key
    written += 1
    const date = utcDate(order.created_at)
    const group = byDate.get(date)
    if (group === undefined) byDate.set(date, [order])
    else group.push(order)
  }
  return { fresh, byDate, dead, lastKey, duplicates, written }
}

/**
 * One batch: lake files first (durable, renamed into place), dead letters next, the checkpoint
 * last. A crash anywhere before the checkpoint leaves it where it was, and the batch is redone.
 */
export const processBatch = Effect.fn("Consumer.processBatch")(function*(batch: MessageBatch, checkpoint: Checkpoint) {
  const lake = yield* Lake
  const deadLetters = yield* DeadLetters
  const checkpoints = yield* CheckpointStore
  const progress = progressOf(checkpoint, batch.partition)
  const split = splitBatch(batch, progress)
  const nextOffset = batch.nextOffset > progress.next_offset ? batch.nextOffset : progress.next_offset
  let files = 0
  if (split.byDate.size > 0) {
    const written = yield* lake.writeBatch({
      topic: batch.topic,
      partition: batch.partition,
      firstOffset: split.fresh[0]!.offset,
      lastOffset: split.fresh[split.fresh.length - 1]!.offset
    }, split.byDate).pipe(
      Effect.tapBoth({
        onFailure: (error) => reportHealth("lake", { ok: false, error: error.message }),
        onSuccess: () => reportHealth("lake", { ok: true })
      })
    )
    files = written.length
    recordLatencies(split.byDate)
    yield* crashPoint("consumer.after-lake-write")
  }
  if (split.dead.length > 0) {
    yield* deadLetters.publish(split.dead).pipe(
      Effect.retry(stepRetry),
      Effect.tapError((error) => reportHealth("broker", { ok: false, error: error.message }))
    )
    yield* crashPoint("consumer.after-dead-letters")
  }
  const next: Checkpoint = {
    ...checkpoint,
    partitions: {
      ...checkpoint.partitions,
      [String(batch.partition)]: { next_offset: nextOffset, last_key: split.lastKey }
    }
  }
  if (nextOffset !== progress.next_offset) yield* checkpoints.save(next)
  const deadLettered: Partial<Record<RejectReason, number>> = {}
  for (const letter of split.dead) deadLettered[letter.rejection.reason] = (deadLettered[letter.rejection.reason] ?? 0) + 1
  yield* recordBatchMetrics(split.fresh.length, split.written, split.duplicates, files, deadLettered)
  return {
    checkpoint: next,
    messages: split.fresh.length,
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

/** Lag per partition: what the topic holds beyond the checkpoint. */
const reportLag = (checkpoint: Checkpoint, ends: ReadonlyMap<number, bigint>) =>
  Effect.forEach(ends, ([partition, end]) => {
    const next = progressOf(checkpoint, partition).next_offset
    const lag = end > next ? end - next : 0n
    return Effect.all([
      Metric.set(consumerLag.pipe(Metric.tagged("partition", String(partition))), Number(lag)),
      Metric.set(consumerNextOffset.pipe(Metric.tagged("partition", String(partition))), Number(next))
    ], { discard: true })
  }, { discard: true })

/** Removes lake files a dead run wrote past the checkpoint, for every partition of the topic. */
const discardUncommitted = (topic: string, checkpoint: Checkpoint, partitions: Iterable<number>) =>
  Effect.gen(function*() {
    const lake = yield* Lake
    for (const partition of partitions) {
      const removed = yield* lake.discardUncommitted(topic, partition, progressOf(checkpoint, partition).next_offset)
      if (removed > 0) {
        yield* Effect.logWarning("removed lake files written past the checkpoint").pipe(
          Effect.annotateLogs({ partition, files: removed })
        )
      }
    }
  })

const caughtUp = (checkpoint: Checkpoint, ends: ReadonlyMap<number, bigint>) =>
  [...ends].every(([partition, end]) => progressOf(checkpoint, partition).next_offset >= end)

const logOutcome = (batch: MessageBatch, outcome: BatchOutcome, ms: number) =>
  Effect.logInfo("batch written").pipe(Effect.annotateLogs({
    partition: batch.partition,
    next_offset: outcome.checkpoint.partitions[String(batch.partition)]!.next_offset.toString(),
    messages: outcome.messages,
    written: outcome.written,
    files: outcome.files,
    duplicates: outcome.duplicates,
    dead_lettered: Object.values(outcome.deadLettered).reduce((a, b) => a + b, 0),
    ...(Object.keys(outcome.deadLettered).length > 0 ? { dead_letter_reasons: JSON.stringify(outcome.deadLettered) } : {}),
    ms
  }))

/**
 * The consumer loop. `once`: drain what the topic holds at start, then return. Otherwise run until
 * interrupted. A failed batch leaves the checkpoint alone; its partial files are discarded and the
 * batch is read again after a backoff.
 */
export const consume = (options: ConsumerOptions & { readonly once: boolean }) =>
  Effect.gen(function*() {
    const stream = yield* OrderStream
    const checkpoints = yield* CheckpointStore
    const backoff: Schedule.Schedule<unknown, unknown> = options.once ? onceBackoff : outageBackoff()
    const logFailure = (what: string) => (error: unknown) =>
      Effect.logWarning(`${what} failed; checkpoint kept, retrying`).pipe(
        Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
      )

    const startup = Effect.gen(function*() {
      const checkpoint = yield* checkpoints.load
      const ends = yield* stream.endOffsets
      yield* discardUncommitted(options.topic, checkpoint, new Set([...ends.keys(), ...positionsOf(checkpoint).keys()]))
      return { checkpoint, ends }
    }).pipe(Effect.tapError(logFailure("startup")), Effect.retry(backoff))

    let { checkpoint, ends } = yield* startup
    let totals = { messages: 0, written: 0, duplicates: 0, deadLettered: 0, files: 0 }
    yield* reportLag(checkpoint, ends)

    if (!options.once) {
      // Lag needs the topic's end, which only the broker knows: ask it every few seconds.
      yield* stream.endOffsets.pipe(
        Effect.flatMap((latest) => reportLag(checkpoint, latest)),
        Effect.ignore,
        Effect.repeat(Schedule.spaced("5 seconds")),
        Effect.forkScoped
      )
    }

    const step = Effect.gen(function*() {
      const batch = yield* stream.poll(positionsOf(checkpoint), options.maxBatchMessages, options.pollWait, options.fill).pipe(
        Effect.tapBoth({
          onFailure: (error) => reportHealth("broker", { ok: false, error: error.message }),
          onSuccess: () => reportHealth("broker", { ok: true })
        })
      )
      if (batch === null) return
      const started = Date.now()
      const outcome = yield* Effect.uninterruptible(
        processBatch(batch, checkpoint).pipe(
          timedSeconds(consumerBatchSeconds),
          Effect.tapError(() =>
            discardUncommitted(options.topic, checkpoint, [batch.partition]).pipe(Effect.ignore)
          )
        )
      )
      checkpoint = outcome.checkpoint
      totals = {
        messages: totals.messages + outcome.messages,
        written: totals.written + outcome.written,
        duplicates: totals.duplicates + outcome.duplicates,
        deadLettered: totals.deadLettered + Object.values(outcome.deadLettered).reduce((a, b) => a + b, 0),
        files: totals.files + outcome.files
      }
      if (outcome.messages > 0) yield* logOutcome(batch, outcome, Date.now() - started)
      yield* stream.commit(positionsOf(checkpoint)).pipe(Effect.ignore)
    }).pipe(Effect.tapError(logFailure("batch")), Effect.retry(backoff))

    if (options.once) {
      while (!caughtUp(checkpoint, ends)) yield* step
      yield* reportLag(checkpoint, ends)
      yield* Effect.logInfo("drained").pipe(Effect.annotateLogs(totals))
      return totals
    }
    return yield* step.pipe(Effect.forever)
  }).pipe(Effect.scoped, Effect.annotateLogs({ program: "consumer" }))

