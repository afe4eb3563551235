import { type Duration, Effect, Metric, Option, Queue, Stream } from "effect"
import { type CaptureKey, keyOf } from "../domain/CaptureKey.ts"
import { formatIsoMicros } from "../domain/Timestamp.ts"
import { reportHealth } from "../observability/Health.ts"
import {
  captureCycleSeconds,
  ordersCaptured,
  ordersPublished,
  producerCursorSeconds,
  publishBatchSeconds,
  timedSeconds
} from "../observability/metrics.ts"
import { crashPoint } from "../runtime/crashPoints.ts"
import { CursorStore } from "../services/CursorStore.ts"
import { OrderPublisher } from "../services/OrderPublisher.ts"
import { OrderSource } from "../services/OrderSource.ts"
import { onceBackoff, outageBackoff, stepRetry } from "../runtime/schedules.ts"

export interface ProducerOptions {
  readonly batchSize: number
  readonly interval: Duration.DurationInput
}

export interface CycleResult {
  readonly published: number
  readonly batches: number
  readonly cursor: CaptureKey | null
}

const showCursor = (cursor: CaptureKey | null) =>
  cursor === null ? "start" : `${formatIsoMicros(cursor.created_at)}#${cursor.order_id}`

/**
 * One capture cycle: publish every order available now, batch by batch. The cursor is saved only
 * after the broker acknowledged the batch, and each publish-then-save runs uninterrupted, so a
 * shutdown signal finishes the batch in flight. During a backlog the next batch is read while the
 * current one is published: the read needs only the batch's last key, not its acknowledgement.
 */
export const captureAvailable = Effect.fn("Producer.captureAvailable")(function*(batchSize: number) {
  const source = yield* OrderSource
  const publisher = yield* OrderPublisher
  const cursors = yield* CursorStore
  const read = (after: CaptureKey | null) =>
    source.readAfter(after, batchSize).pipe(
      Effect.retry(stepRetry),
      Effect.tapBoth({
        onFailure: (error) => reportHealth("database", { ok: false, error: error.message }),
        onSuccess: () => reportHealth("database", { ok: true })
      })
    )
  let cursor = Option.getOrNull(yield* cursors.load)
  // Exported from the start, not only after a publish: a producer stuck since it started shows it.
  if (cursor !== null) yield* Metric.set(producerCursorSeconds, Number(cursor.created_at / 1000n) / 1000)
  let published = 0
  let batches = 0
  let orders = yield* read(cursor)
  while (orders.length > 0) {
    yield* Metric.incrementBy(ordersCaptured, orders.length)
    const next = keyOf(orders[orders.length - 1]!)
    const full = orders.length === batchSize
    const publishAndSave = Effect.uninterruptible(
      publisher.publish(orders, { backlog: full }).pipe(
        Effect.retry(stepRetry),
        timedSeconds(publishBatchSeconds),
        Effect.tapBoth({
          onFailure: (error) => reportHealth("broker", { ok: false, error: error.message }),
          onSuccess: () => reportHealth("broker", { ok: true })
        }),
        Effect.zipRight(crashPoint("producer.after-publish")),
        Effect.zipRight(cursors.save(next).pipe(Effect.retry(stepRetry)))
      )
    )
    const [, following] = yield* Effect.all([publishAndSave, full ? read(next) : Effect.succeed([])], { concurrency: 2 })
    yield* Metric.incrementBy(ordersPublished, orders.length)
    yield* Metric.set(producerCursorSeconds, Number(next.created_at / 1000n) / 1000)
    cursor = next
    published += orders.length
    batches += 1
    orders = following
  }
  return { published, batches, cursor } satisfies CycleResult
})

/** Idle cycles of a running producer log at debug level: one line per poll would drown the log. */
const loggedCycle = (batchSize: number, quietWhenIdle: boolean) =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* captureAvailable(batchSize).pipe(timedSeconds(captureCycleSeconds))
    const log = quietWhenIdle && result.published === 0 ? Effect.logDebug : Effect.logInfo
    yield* log("capture cycle").pipe(Effect.annotateLogs({
      published: result.published,
      batches: result.batches,
      cursor: showCursor(result.cursor),
      ms: Date.now() - started
    }))
    return result
  })

const logOutage = (error: unknown) =>
  Effect.logWarning("capture cycle failed; position kept, retrying").pipe(
    Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
  )

/** `--once`: capture everything available now, retrying a bounded time through outages. */
export const produceOnce = (options: ProducerOptions) =>
  loggedCycle(options.batchSize, false).pipe(
    Effect.tapError(logOutage),
    Effect.retry(onceBackoff),
    Effect.annotateLogs({ program: "producer" })
  )

/**
 * Runs until interrupted. A cycle runs when the source signals new commits, or after `interval`
 * without one (the fallback that also covers missed notifications). A failed cycle (after its step
 * retries) is logged and retried with capped backoff from the saved cursor.
 */
export const produceForever = (options: ProducerOptions) =>
  Effect.gen(function*() {
    const source = yield* OrderSource
    // Sliding, size 1: any number of commits during a cycle collapse into one more cycle.
    const wake = yield* Queue.sliding<void>(1)
    yield* source.changes.pipe(
      Stream.runForEach(() => Queue.offer(wake, undefined)),
      Effect.tapError((error) =>
        Effect.logWarning("change notifications interrupted; polling every batch_interval meanwhile").pipe(
          Effect.annotateLogs({ error: error.message })
        )
      ),
      Effect.retry(outageBackoff()),
      Effect.forkScoped
    )
    const cycle = loggedCycle(options.batchSize, true).pipe(Effect.tapError(logOutage), Effect.retry(outageBackoff()))
    while (true) {
      yield* cycle
      yield* Effect.race(Queue.take(wake), Effect.sleep(options.interval))
    }
  }).pipe(Effect.scoped, Effect.annotateLogs({ program: "producer" }))
