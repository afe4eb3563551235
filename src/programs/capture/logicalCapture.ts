import { Effect, Schedule } from "effect"
import type pg from "pg"
import { isTransientCapture } from "../../layers/postgres/logical/CaptureError.ts"
import { queryPool } from "../../layers/postgres/logical/pgConnection.ts"
import { ensurePublication, preflight } from "../../layers/postgres/logical/preflight.ts"
import { registerCaptureOps } from "../../observability/captureMetrics.ts"
import { reportHealth } from "../../observability/Health.ts"
import { onceBackoff, outageBackoff } from "../../runtime/schedules.ts"
import type { LogicalCaptureSettings } from "./captureSettings.ts"
import { streamSession } from "./changeStream.ts"
import { ensureSnapshot, resetCapture } from "./initialSnapshot.ts"

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * Transient failures (PostgreSQL or the broker down, the replication connection lost) are logged
 * and retried from the slot, whose confirmed position never passed anything unpublished; the rest
 * (missing privileges, a lost slot, a changed table) stop the program with their message.
 */
const retryingOutages = (settings: LogicalCaptureSettings, step: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.tapError((error) =>
      isTransientCapture(error)
        ? Effect.zipRight(
          reportHealth(describe(error).startsWith("kafka") ? "broker" : "database", { ok: false, error: describe(error) }),
          Effect.logWarning(`${step} failed; position kept in the slot, retrying`).pipe(Effect.annotateLogs({ error: describe(error) }))
        )
        : Effect.void
    ),
    Effect.retry({ schedule: settings.once ? onceBackoff : outageBackoff().pipe(Schedule.upTo("365 days")), while: isTransientCapture })
  )

const setUp = (pool: pg.Pool, settings: LogicalCaptureSettings) =>
  Effect.gen(function*() {
    const table = yield* preflight(pool, settings.table, settings.slot)
    yield* ensurePublication(pool, settings.publication, table)
    yield* reportHealth("database", { ok: true })
    return table
  })

/**
 * capture.mode `logical`: the table's changes through a replication slot. First a consistent
 * snapshot of the table (op snapshot), then every committed insert, update and delete after it,
 * in commit order. With `once`, stops when caught up with what was committed at the start.
 */
export const runLogicalCapture = (settings: LogicalCaptureSettings) =>
  Effect.scoped(Effect.gen(function*() {
    yield* registerCaptureOps
    const pool = yield* queryPool(settings.pg)
    const table = yield* setUp(pool, settings).pipe(retryingOutages(settings, "preflight"))
    if (settings.resnapshot) yield* resetCapture(pool, settings).pipe(retryingOutages(settings, "re-snapshot"))
    yield* ensureSnapshot(pool, settings).pipe(retryingOutages(settings, "snapshot"))
    while (true) {
      const result = yield* streamSession(pool, settings, table).pipe(retryingOutages(settings, "streaming"))
      if (settings.once) return result
    }
  })).pipe(Effect.annotateLogs({ program: "producer", capture: "logical", slot: settings.slot }))
