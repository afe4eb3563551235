import { Clock, Duration, Effect, Metric, Schedule } from "effect"
import { reportHealth } from "../../observability/Health.ts"
import { consumerBatchSeconds, lakeCommitConflicts, timedSeconds } from "../../observability/metrics.ts"
import { isBrokerRefusal } from "../../services/errors.ts"
import { isPermanentLakeError, Lake, type LakeError, type PartitionPosition } from "../../services/Lake.ts"
import { type MessageBatch, OrderStream } from "../../services/OrderStream.ts"
import { onceBackoff, outageBackoff } from "../../runtime/schedules.ts"
import { CommitConflict } from "../../table/tableErrors.ts"
import { type BatchOutcome, commitBatch } from "./commitBatch.ts"
import type { ConsumerOptions } from "./flushPolicy.ts"
import { caughtUp, offsetsOf, positionOf, type Positions, reportLag } from "./lag.ts"
import { addToSplit, openSplit, type Split } from "./split.ts"

/** What the loop needs of one partition's part of a batch, whatever the table. */
export interface SplitProgress {
  readonly partition: number
  readonly messages: number
  readonly bytes: number
  readonly changes: { readonly length: number }
  readonly nextOffset: bigint
}

/**
 * How a consumer writes one kind of table: the orders tables (`ordersWriter`), or a table captured
 * beside them (tableLane.ts). The loop (`consumeWith`) fills batches and handles positions,
 * rebalances, conflicts and retries the same way for both.
 */
export interface BatchWriter<S extends SplitProgress, E, R> {
  /** Per partition of the topic, where the table stands. */
  readonly positions: (topic: string) => Effect.Effect<Positions, LakeError, R>
  readonly setMaintenance: (on: boolean) => Effect.Effect<void, never, R>
  readonly openSplit: (topic: string, partition: number, position: PartitionPosition) => S
  readonly addToSplit: (split: S, batch: MessageBatch) => void
  /** One table commit of the batch; CommitConflict when another writer moved one of its partitions first. */
  readonly commit: (splits: ReadonlyArray<S>) => Effect.Effect<BatchOutcome, E | CommitConflict, R>
}

/** The orders tables (`orders` and `order_changes`), through the Lake service. */
export const ordersWriter: BatchWriter<Split, Effect.Effect.Error<ReturnType<typeof commitBatch>>, Effect.Effect.Context<ReturnType<typeof commitBatch>>> = {
  positions: (topic) => Effect.flatMap(Lake, (lake) => lake.positions(topic)),
  setMaintenance: (on) => Effect.flatMap(Lake, (lake) => lake.setMaintenance(on)),
  openSplit,
  addToSplit: (split, batch) => {
    addToSplit(split, batch)
  },
  commit: commitBatch
}

interface BatchTimes {
  /** How long the batch was open, filling (the flush policy's wait included). */
  readonly openMs: number
  /** Of that, decoding and cleaning its messages. */
  readonly decodeMs: number
  /** Writing it: dead letters, Parquet files, the table commit. */
  readonly writeMs: number
}

const logOutcome = (outcome: BatchOutcome, times: BatchTimes) =>
  Effect.logInfo("batch written").pipe(Effect.annotateLogs({
    partitions: [...outcome.positions.keys()].sort((a, b) => a - b).join(","),
    next_offsets: [...outcome.positions].sort(([a], [b]) => a - b).map(([p, position]) => `${p}:${position.nextOffset}`).join(","),
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
 * flush policy, from every partition this consumer owns (one split per partition, one table
 * version), and commits it. A failed batch leaves the table's positions alone and is read again
 * (the stream rewinds to the positions) after a backoff.
 *
 * Several consumers share the topic through the consumer group. When the assignment changes (a new
 * generation), the open batch is dropped and the positions are re-read from the table: a partition
 * that moved here resumes where its previous owner's last commit left it. A consumer that lost a
 * partition without noticing (frozen past its session timeout) cannot commit for it: the table
 * refuses a commit when any of its partitions moved since the batch was read (CommitConflict); it
 * then re-reads the positions and drops the batch. If that zombie commits first, the new owner's
 * commit is the one refused, and it re-reads: either way each offset is in the table once.
 * One consumer of the group maintains (compacts, vacuums) the table: the owner of partition 0.
 */
export const consume = (options: ConsumerOptions & { readonly once: boolean }) => consumeWith(ordersWriter, options)

/** The consumer loop (see `consume`) for any table's writer. */
export const consumeWith = <S extends SplitProgress, E, R>(writer: BatchWriter<S, E, R>, options: ConsumerOptions & { readonly once: boolean }) =>
  Effect.gen(function*() {
    const stream = yield* OrderStream
    const lake = writer
    const lagTopic = options.tagLagWithTopic === true ? options.topic : undefined
    const backoff: Schedule.Schedule<unknown, unknown> = options.once ? onceBackoff : outageBackoff()
    const logFailure = (what: string) => (error: unknown) =>
      isBrokerRefusal(error)
        ? Effect.logError(`${what} failed: the broker refuses this consumer; stopping, table position kept`).pipe(
          Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
        )
        : isPermanentLakeError(error)
        ? Effect.logError(`${what} failed: the table cannot be written by this consumer; stopping, table position kept`).pipe(
          Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
        )
        : Effect.logWarning(`${what} failed; table position kept, retrying`).pipe(
          Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
        )

    // The generation before the positions: an assignment that changes in between is followed.
    let generation = (yield* stream.assignment).generation
    const startup = Effect.all({ positions: lake.positions(options.topic), ends: stream.endOffsets }).pipe(
      Effect.tapError(logFailure("startup")),
      Effect.retry({ schedule: backoff, while: (error) => !isPermanentLakeError(error) && !isBrokerRefusal(error) })
    )
    let { ends, positions } = yield* startup
    let current: Positions = positions
    let totals = { messages: 0, written: 0, duplicates: 0, deadLettered: 0, files: 0 }
    yield* reportLag(current, ends, lagTopic)

    if (!options.once) {
      // Lag needs the topic's end, which only the broker knows: ask it every few seconds.
      yield* stream.endOffsets.pipe(
        Effect.flatMap((latest) => reportLag(current, latest, lagTopic)),
        Effect.ignore,
        Effect.repeat(Schedule.spaced("5 seconds")),
        Effect.forkScoped
      )
    }

    /**
     * A new assignment: positions from the table (another owner may have moved ours meanwhile), and
     * table maintenance on this consumer only if it owns partition 0. True when it changed.
     */
    const followAssignment = Effect.gen(function*() {
      const assignment = yield* stream.assignment
      if (assignment.generation === generation) return false
      current = yield* lake.positions(options.topic)
      generation = assignment.generation
      yield* lake.setMaintenance(assignment.partitions.has(0))
      yield* Effect.logInfo("assignment changed; positions re-read from the table").pipe(Effect.annotateLogs({
        generation,
        partitions: [...assignment.partitions].sort((a, b) => a - b).join(","),
        next_offsets: [...current].map(([p, position]) => `${p}:${position.nextOffset}`).join(",")
      }))
      return true
    })
    yield* lake.setMaintenance((yield* stream.assignment).partitions.has(0))

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

    /**
     * Fills one lake batch from every partition that has messages: until the flush policy closes
     * it (counting all its partitions together), or null when nothing arrived. Null too when the
     * assignment changed meanwhile: the batch is dropped, and the next one starts from the table.
     */
    const fill = Effect.gen(function*() {
      yield* followAssignment
      const first = yield* poll(offsetsOf(current), flush.maxMessages, options.pollWait)
      if (first === null) return null
      const openedAt = yield* Clock.currentTimeMillis
      let decodeMs = 0
      const splits = new Map<number, S>()
      let messages = 0
      let bytes = 0
      let changes = 0
      const add = (batch: MessageBatch) => {
        const started = performance.now()
        let split = splits.get(batch.partition)
        if (split === undefined) {
          split = writer.openSplit(batch.topic, batch.partition, positionOf(current, batch.partition))
          splits.set(batch.partition, split)
        }
        messages -= split.messages
        bytes -= split.bytes
        changes -= split.changes.length
        writer.addToSplit(split, batch)
        messages += split.messages
        bytes += split.bytes
        changes += split.changes.length
        decodeMs += performance.now() - started
      }
      add(first)
      // While any partition says more follows at once, the batch stays open for backlogLinger.
      const backlogs = new Map([[first.partition, first.backlog]])
      const maxChanges = flush.maxChanges ?? flush.maxMessages
      while (messages < flush.maxMessages && bytes < flush.maxBytes && changes < maxChanges) {
        // `--once` drains what the topic held at start: nothing more is worth waiting for.
        if (options.once && [...ends].every(([p, end]) => (splits.get(p)?.nextOffset ?? positionOf(current, p).nextOffset) >= end)) break
        const backlog = [...backlogs.values()].some((b) => b)
        const wait = openedAt + (backlog ? backlogLingerMs : lingerMs) - (yield* Clock.currentTimeMillis)
        if (wait <= 0) break
        const from = new Map(offsetsOf(current))
        for (const [p, split] of splits) from.set(p, split.nextOffset)
        const next = yield* poll(from, Math.min(flush.maxMessages - messages, maxChanges - changes), Duration.millis(wait))
        if (next === null) break
        add(next)
        backlogs.set(next.partition, next.backlog)
      }
      // A rebalance while the batch filled: some of it may belong to another consumer now.
      if (yield* followAssignment) return null
      return { splits: [...splits.values()], openMs: (yield* Clock.currentTimeMillis) - openedAt, decodeMs: Math.round(decodeMs) }
    })

    const step = Effect.gen(function*() {
      const filled = yield* fill
      if (filled === null) return
      const { splits } = filled
      const started = Date.now()
      const outcome = yield* Effect.uninterruptible(writer.commit(splits).pipe(timedSeconds(consumerBatchSeconds))).pipe(
        Effect.catchIf((error): error is CommitConflict => error instanceof CommitConflict, (conflict) =>
          Effect.gen(function*() {
            yield* Metric.increment(lakeCommitConflicts)
            yield* Effect.logWarning("another writer committed a partition of this batch first; batch dropped, resuming from the table's positions")
              .pipe(Effect.annotateLogs({ partitions: splits.map((s) => s.partition).sort((a, b) => a - b).join(","), detail: conflict.detail }))
            current = yield* lake.positions(options.topic)
            return null
          }))
      )
      if (outcome === null) return
      const next = new Map(current)
      for (const [p, position] of outcome.positions) next.set(p, position)
      current = next
      totals = {
        messages: totals.messages + outcome.messages,
        written: totals.written + outcome.written,
        duplicates: totals.duplicates + outcome.duplicates,
        deadLettered: totals.deadLettered + Object.values(outcome.deadLettered).reduce((a, b) => a + b, 0),
        files: totals.files + outcome.files
      }
      if (outcome.messages > 0) {
        yield* logOutcome(outcome, { openMs: filled.openMs, decodeMs: filled.decodeMs, writeMs: Date.now() - started })
      }
      // For lag tooling only: the table is the truth.
      yield* stream.commit(offsetsOf(current)).pipe(Effect.ignore)
    }).pipe(
      Effect.tapError(logFailure("batch")),
      Effect.retry({ schedule: backoff, while: (error) => !isPermanentLakeError(error) && !isBrokerRefusal(error) })
    )

    if (options.once) {
      while (!caughtUp(current, ends)) yield* step
      yield* reportLag(current, ends, lagTopic)
      // The peak resident size of the run, as the producer reports it: what a large backfill or transaction cost.
      yield* Effect.logInfo("drained").pipe(Effect.annotateLogs({ ...totals, max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024) }))
      return totals
    }
    return yield* step.pipe(Effect.forever)
  }).pipe(Effect.scoped, Effect.annotateLogs({ program: "consumer" }))
