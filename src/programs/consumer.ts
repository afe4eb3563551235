import { Clock, Duration, Effect, Either, Metric, Schedule } from "effect"
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
import { type MessageBatch, OrderStream } from "../services/OrderStream.ts"
import { onceBackoff, outageBackoff, stepRetry } from "./schedules.ts"

/**
 * When a lake batch (one file per date) closes: at `maxMessages` or `maxBytes` of message values,
 * or once it has been open `linger` (light traffic: low latency), or `backlogLinger` while the
 * stream says more follows at once (a backfill: large files).
 */
export interface FlushPolicy {
  readonly maxMessages: number
  readonly maxBytes: number
  readonly linger: Duration.DurationInput
  readonly backlogLinger: Duration.DurationInput
}

export interface ConsumerOptions {
  readonly topic: string
  /** How long one poll waits for messages when no batch is open. */
  readonly pollWait: Duration.DurationInput
  readonly flush: FlushPolicy
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
 * A lake batch being filled: the orders for the lake (grouped by UTC date), dead letters and
 * re-published duplicates of consecutive messages of one partition. Messages are decoded as they
 * arrive and only the orders are kept, so a large batch costs its orders, not its raw messages.
 */
export interface Split {
  readonly topic: string
  readonly partition: number
  /** Offsets of the first and last message not yet in the checkpoint; null while there is none. */
  firstOffset: bigint | null
  lastOffset: bigint | null
  /** The offset after the last message added. */
  nextOffset: bigint
  /** Messages past the checkpoint, and the bytes of their values. */
  messages: number
  bytes: number
  readonly byDate: Map<string, Array<Order>>
  readonly dead: Array<DeadLetter>
  lastKey: CaptureKey | null
  duplicates: number
  written: number
}

export const openSplit = (topic: string, partition: number, progress: PartitionProgress): Split => ({
  topic,
  partition,
  firstOffset: null,
  lastOffset: null,
  nextOffset: progress.next_offset,
  messages: 0,
  bytes: 0,
  byDate: new Map(),
  dead: [],
  lastKey: progress.last_key,
  duplicates: 0,
  written: 0
})

/**
 * Adds the next messages of the split's partition. Deterministic: the same messages from the same
 * checkpoint always give the same orders, dead letters and duplicates, which is what makes
 * re-processing after a crash produce the same lake.
 */
export const addToSplit = (split: Split, batch: MessageBatch): Split => {
  for (const message of batch.messages) {
    if (message.offset < split.nextOffset) continue
    if (split.firstOffset === null) split.firstOffset = message.offset
    split.lastOffset = message.offset
    split.messages += 1
    split.bytes += message.value?.length ?? 0
    const decoded = decodeAndClean(message.value)
    if (Either.isLeft(decoded)) {
      split.dead.push({ source: { topic: batch.topic, partition: batch.partition }, message, rejection: decoded.left })
      continue
    }
    const order = decoded.right
    const key = keyOf(order)
    if (split.lastKey !== null && compareKeys(key, split.lastKey) <= 0) {
      split.duplicates += 1
      continue
    }
    split.lastKey = key
    split.written += 1
    const date = utcDate(order.created_at)
    const group = split.byDate.get(date)
    if (group === undefined) split.byDate.set(date, [order])
    else group.push(order)
  }
  if (batch.nextOffset > split.nextOffset) split.nextOffset = batch.nextOffset
  return split
}

/**
 * One batch: lake files first (durable, renamed into place), dead letters next, the checkpoint
 * last. A crash anywhere before the checkpoint leaves it where it was, and the batch is redone.
 */
export const processBatch = Effect.fn("Consumer.processBatch")(function*(split: Split, checkpoint: Checkpoint) {
  const lake = yield* Lake
  const deadLetters = yield* DeadLetters
  const checkpoints = yield* CheckpointStore
  const progress = progressOf(checkpoint, split.partition)
  const nextOffset = split.nextOffset > progress.next_offset ? split.nextOffset : progress.next_offset
  let files = 0
  if (split.byDate.size > 0) {
    const written = yield* lake.writeBatch({
      topic: split.topic,
      partition: split.partition,
      firstOffset: split.firstOffset!,
      lastOffset: split.lastOffset!
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
      [String(split.partition)]: { next_offset: nextOffset, last_key: split.lastKey }
    }
  }
  if (nextOffset !== progress.next_offset) yield* checkpoints.save(next)
  const deadLettered: Partial<Record<RejectReason, number>> = {}
  for (const letter of split.dead) deadLettered[letter.rejection.reason] = (deadLettered[letter.rejection.reason] ?? 0) + 1
  yield* recordBatchMetrics(split.messages, split.written, split.duplicates, files, deadLettered)
  return {
    checkpoint: next,
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

interface BatchTimes {
  /** How long the batch was open, filling (the flush policy's wait included). */
  readonly openMs: number
  /** Of that, decoding and cleaning its messages. */
  readonly decodeMs: number
  /** Writing it: Parquet, fsync and rename, dead letters, checkpoint. */
  readonly writeMs: number
}

const logOutcome = (partition: number, outcome: BatchOutcome, times: BatchTimes) =>
  Effect.logInfo("batch written").pipe(Effect.annotateLogs({
    partition,
    next_offset: outcome.checkpoint.partitions[String(partition)]!.next_offset.toString(),
    messages: outcome.messages,
    written: outcome.written,
    files: outcome.files,
    duplicates: outcome.duplicates,
    dead_lettered: Object.values(outcome.deadLettered).reduce((a, b) => a + b, 0),
    ...(Object.keys(outcome.deadLettered).length > 0 ? { dead_letter_reasons: JSON.stringify(outcome.deadLettered) } : {}),
    open_ms: times.openMs,
    decode_ms: times.decodeMs,
    ms: times.writeMs
  }))

/**
 * The consumer loop. `once`: drain what the topic holds at start, then return. Otherwise run until
 * interrupted. Each step fills one lake batch by the flush policy and writes it. A failed batch
 * leaves the checkpoint alone; its partial files are discarded and the batch is read again (the
 * stream rewinds to the checkpoint) after a backoff.
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

    const { flush } = options
    const lingerMs = Duration.toMillis(Duration.decode(flush.linger))
    const backlogLingerMs = Duration.toMillis(Duration.decode(flush.backlogLinger))
    const poll = (positions: ReadonlyMap<number, bigint>, maxMessages: number, wait: Duration.DurationInput) =>
      stream.poll(positions, maxMessages, wait).pipe(
        Effect.tapBoth({
          onFailure: (error) => reportHealth("broker", { ok: false, error: error.message }),
          onSuccess: () => reportHealth("broker", { ok: true })
        })
      )
    // Polled for another partition while a batch was open: it opens the next batch.
    let carried: MessageBatch | null = null

    /** Fills one lake batch: until the flush policy closes it, or null when nothing arrived. */
    const fill = Effect.gen(function*() {
      const first = carried ?? (yield* poll(positionsOf(checkpoint), flush.maxMessages, options.pollWait))
      carried = null
      if (first === null) return null
      const openedAt = yield* Clock.currentTimeMillis
      let decodeMs = 0
      const add = (split: Split, batch: MessageBatch) => {
        const started = performance.now()
        addToSplit(split, batch)
        decodeMs += performance.now() - started
      }
      const split = openSplit(first.topic, first.partition, progressOf(checkpoint, first.partition))
      add(split, first)
      let backlog = first.backlog
      while (split.messages < flush.maxMessages && split.bytes < flush.maxBytes) {
        // `--once` drains what the topic held at start: nothing more is worth waiting for.
        if (options.once && split.nextOffset >= (ends.get(split.partition) ?? 0n)) break
        const wait = openedAt + (backlog ? backlogLingerMs : lingerMs) - (yield* Clock.currentTimeMillis)
        if (wait <= 0) break
        const positions = new Map(positionsOf(checkpoint)).set(split.partition, split.nextOffset)
        const next = yield* poll(positions, flush.maxMessages - split.messages, Duration.millis(wait))
        if (next === null) break
        if (next.partition !== split.partition) {
          carried = next
          break
        }
        add(split, next)
        backlog = next.backlog
      }
      return { split, openMs: (yield* Clock.currentTimeMillis) - openedAt, decodeMs: Math.round(decodeMs) }
    })

    const step = Effect.gen(function*() {
      const filled = yield* fill
      if (filled === null) return
      const { split } = filled
      const started = Date.now()
      const outcome = yield* Effect.uninterruptible(
        processBatch(split, checkpoint).pipe(
          timedSeconds(consumerBatchSeconds),
          Effect.tapError(() =>
            discardUncommitted(options.topic, checkpoint, [split.partition]).pipe(Effect.ignore)
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
      if (outcome.messages > 0) {
        yield* logOutcome(split.partition, outcome, { openMs: filled.openMs, decodeMs: filled.decodeMs, writeMs: Date.now() - started })
      }
      yield* stream.commit(positionsOf(checkpoint)).pipe(Effect.ignore)
    }).pipe(
      Effect.tapError(() => Effect.sync(() => (carried = null))),
      Effect.tapError(logFailure("batch")),
      Effect.retry(backoff)
    )

    if (options.once) {
      while (!caughtUp(checkpoint, ends)) yield* step
      yield* reportLag(checkpoint, ends)
      yield* Effect.logInfo("drained").pipe(Effect.annotateLogs(totals))
      return totals
    }
    return yield* step.pipe(Effect.forever)
  }).pipe(Effect.scoped, Effect.annotateLogs({ program: "consumer" }))

