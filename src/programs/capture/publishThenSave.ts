import { Effect } from "effect"
import { reportHealth } from "../../observability/Health.ts"
import { crashPoint } from "../../runtime/crashPoints.ts"
import { stepRetry } from "../../runtime/schedules.ts"
import type { BrokerError } from "../../services/errors.ts"

/**
 * One step of capture: a batch published (acknowledged by the broker), then the position after it
 * saved, as one uninterruptible step, so that a shutdown signal finishes it. A crash between the two
 * (crash point `producer.after-publish`) publishes the batch again on restart, which the consumer
 * drops as copies. Each half is retried briefly; the broker's health follows the publish.
 */
export const publishThenSave = <R1, E2, R2>(publish: Effect.Effect<void, BrokerError, R1>, save: Effect.Effect<void, E2, R2>) =>
  Effect.uninterruptible(
    publish.pipe(
      Effect.retry(stepRetry),
      Effect.tapBoth({
        onFailure: (error) => reportHealth("broker", { ok: false, error: error.message }),
        onSuccess: () => reportHealth("broker", { ok: true })
      }),
      Effect.zipRight(crashPoint("producer.after-publish")),
      Effect.zipRight(Effect.suspend(() => save).pipe(Effect.retry(stepRetry)))
    )
  )
