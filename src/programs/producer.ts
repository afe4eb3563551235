import { Duration, Effect, Option, Schedule } from "effect"
import { type CaptureKey, keyOf } from "../domain/CaptureKey.ts"
import { formatIsoMicros } from "../domain/Timestamp.ts"
import { crashPoint } from "../runtime/crashPoints.ts"
import { CursorStore } from "../services/CursorStore.ts"
import { OrderPublisher } from "../services/OrderPublisher.ts"
import { OrderSource } from "../services/OrderSource.ts"
import { onceBackoff, outageBackoff, stepRetry } from "./schedules.ts"

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
 * shutdown signal finishes the batch in flight.
 */
export const captureAvailable = Effect.fn("Producer.captureAvailable")(function*(batchSize: number) {
  const source = yield* OrderSource
  const publisher = yield* OrderPublisher
  const cursors = yield* CursorStore
  let cursor = Option.getOrNull(yield* cursors.load)
  let published = 0
  let batches = 0
  while (true) {
    const orders = yield* source.readAfter(cursor, batchSize).pipe(Effect.retry(stepRetry))
    if (orders.length === 0) break
    const next = keyOf(orders[orders.length - 1]!)
    yield* Effect.uninterruptible(
      publisher.publish(orders).pipe(
        Effect.retry(stepRetry),
        Effect.zipRight(crashPoint("producer.after-publish")),
        Effect.zipRight(cursors.save(next).pipe(Effect.retry(stepRetry)))
      )
    )
    cursor = next
    published += orders.length
    batches += 1
    if (orders.length < batchSize) break
  }
  return { published, batches, cursor } satisfies CycleResult
})

const loggedCycle = (batchSize: number) =>
  Effect.gen(function*() {
    const started = Date.now()
    const result = yield* captureAvailable(batchSize)
    yield* Effect.logInfo("capture cycle").pipe(Effect.annotateLogs({
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
  loggedCycle(options.batchSize).pipe(
    Effect.tapError(logOutage),
    Effect.retry(onceBackoff),
    Effect.annotateLogs({ program: "producer" })
  )

/**
 * Runs until interrupted: a cycle every `interval`. A failed cycle (after its step retries) is
 * logged and retried with capped backoff from the saved cursor.
 */
export const produceForever = (options: ProducerOptions) =>
  loggedCycle(options.batchSize).pipe(
    Effect.tapError(logOutage),
    Effect.retry(outageBackoff()),
    Effect.repeat(Schedule.spaced(options.interval)),
    Effect.asVoid,
    Effect.annotateLogs({ program: "producer" })
  )
