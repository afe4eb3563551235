import { Clock, Duration, Effect, Metric, Schedule } from "effect"
import { reportHealth } from "../../observability/Health.ts"
import { consumerBatchSeconds, lakeCommitConflicts, timedSeconds } from "../../observability/metrics.ts"
import { Lake } from "../../services/Lake.ts"
import { type MessageBatch, OrderStream } from "../../services/OrderStream.ts"
import { onceBackoff, outageBackoff } from "../../runtime/schedules.ts"
import { type BatchOutcome, commitBatch } from "./commitBatch.ts"
import type { ConsumerOptions } from "./flushPolicy.ts"
import { caughtUp, offsetsOf, positionOf, type Positions, reportLag } from "./lag.ts"
import { addToSplit, openSplit, type Split } from "./split.ts"

interface BatchTimes {
  /** How long the batch was open, filling (the flush policy's wait included). */
  readonly openMs: number
  /** Of that, decoding and cleaning its messages. */
  readonly decodeMs: number
  /** Writing it: dead letters, Parquet files, the table commit. */
  readonly writeMs: number
}

const logOutcome = (partition: number, outcome: BatchOutcome, times: BatchTimes) =>
  Effect.logInfo("batch written").pipe(Effect.annotateLogs({
    partition,
    next_offset: outcome.position.nextOffset.toString(),
    version: outcome.version ?? "none",
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
 * interrupted. Positions come from the table (its `txn` per partition), so a restart, or another
 * machine, resumes exactly where the last commit left off. Each step fills one lake batch by the
 * flush policy and commits it. A failed batch leaves the table's position alone and is read again
 * (the stream rewinds to the position) after a backoff. A conflict (another consumer committed the
 * partition) re-reads the positions from the table and carries on from there.
 */
export const consume = (options: ConsumerOptions & { readonly once: boolean }) =>
  Effect.gen(function*() {
    const stream = yield* OrderStream
    const lake = yield* Lake
    const backoff: Schedule.Schedule<unknown, unknown> = options.once ? onceBackoff : outageBackoff()
    const logFailure = (what: string) => (error: unknown) =>
      Effect.logWarning(`${what} failed; table position kept, retrying`).pipe(
        Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
      )

    const startup = Effect.all({ positions: lake.positions(options.topic), ends: stream.endOffsets }).pipe(
      Effect.tapError(logFailure("startup")),
      Effect.retry(backoff)
    )
    let { ends, positions } = yield* startup
    let current: Positions = positions
    let totals = { messages: 0, written: 0, duplicates: 0, deadLettered: 0, files: 0 }
    yield* reportLag(current, ends)

    if (!options.once) {
      // Lag needs the topic's end, which only the broker knows: ask it every few seconds.
      yield* stream.endOffsets.pipe(
        Effect.flatMap((latest) => reportLag(current, latest)),
        Effect.ignore,
        Effect.repeat(Schedule.spaced("5 seconds")),
        Effect.forkScoped
      )
    }

    const { flush } = options
    const lingerMs = Duration.toMillis(Duration.decode(flush.linger))
    const backlogLingerMs = Duration.toMillis(Duration.decode(flush.backlogLinger))
    const poll = (from: ReadonlyMap<number, bigint>, maxMessages: number, wait: Duration.DurationInput) =>
      stream.poll(from, maxMessages, wait).pipe(
        Effect.tapBoth({
          onFailure: (error) => reportHealth("broker", { ok: false, error: error.message }),
          onSuccess: () => reportHealth("broker", { ok: true })
        })
      )
    // Polled for another partition while a batch was open: it opens the next batch.
    let carried: MessageBatch | null = null

    /** Fills one lake batch: until the flush policy closes it, or null when nothing arrived. */
    const fill = Effect.gen(function*() {
      const first = carried ?? (yield* poll(offsetsOf(current), flush.maxMessages, options.pollWait))
      carried = null
      if (first === null) return null
      const openedAt = yield* Clock.currentTimeMillis
      let decodeMs = 0
      const add = (split: Split, batch: MessageBatch) => {
        const started = performance.now()
        addToSplit(split, batch)
        decodeMs += performance.now() - started
      }
      const split = openSplit(first.topic, first.partition, positionOf(current, first.partition))
      add(split, first)
      let backlog = first.backlog
      while (split.messages < flush.maxMessages && split.bytes < flush.maxBytes) {
        // `--once` drains what the topic held at start: nothing more is worth waiting for.
        if (options.once && split.nextOffset >= (ends.get(split.partition) ?? 0n)) break
        const wait = openedAt + (backlog ? backlogLingerMs : lingerMs) - (yield* Clock.currentTimeMillis)
        if (wait <= 0) break
        const from = new Map(offsetsOf(current)).set(split.partition, split.nextOffset)
        const next = yield* poll(from, flush.maxMessages - split.messages, Duration.millis(wait))
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
      const outcome = yield* Effect.uninterruptible(commitBatch(split).pipe(timedSeconds(consumerBatchSeconds))).pipe(
        Effect.catchTag("CommitConflict", (conflict) =>
          Effect.gen(function*() {
            yield* Metric.increment(lakeCommitConflicts)
            yield* Effect.logWarning("another writer committed this partition first; resuming from the table's position")
              .pipe(Effect.annotateLogs({ partition: split.partition, detail: conflict.detail }))
            current = yield* lake.positions(options.topic)
            return null
          }))
      )
      if (outcome === null) return
      current = new Map(current).set(split.partition, outcome.position)
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
      // For lag tooling only: the table is the truth.
      yield* stream.commit(offsetsOf(current)).pipe(Effect.ignore)
    }).pipe(
      Effect.tapError(() => Effect.sync(() => (carried = null))),
      Effect.tapError(logFailure("batch")),
      Effect.retry(backoff)
    )

    if (options.once) {
      while (!caughtUp(current, ends)) yield* step
      yield* reportLag(current, ends)
      yield* Effect.logInfo("drained").pipe(Effect.annotateLogs(totals))
      return totals
    }
    return yield* step.pipe(Effect.forever)
  }).pipe(Effect.scoped, Effect.annotateLogs({ program: "consumer" }))
