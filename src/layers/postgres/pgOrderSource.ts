import { PgClient } from "@effect/sql-pg"
import { Effect, Either, Layer, Metric, ParseResult, Stream } from "effect"
import type { SqlIdentifier } from "../../config/Identifiers.ts"
import { formatIsoMicros } from "../../domain/Timestamp.ts"
import { decodeOrderRows } from "../../domain/Order.ts"
import { captureHeldBackSeconds, sourceNewestSeconds } from "../../observability/metrics.ts"
import { SourceError } from "../../services/errors.ts"
import { OrderSource } from "../../services/OrderSource.ts"
import {
  canSeeOtherTransactionsSql,
  captureAfterSql,
  captureFirstSql,
  captureHorizonSql,
  oldestOpenTransactionSql
} from "./captureQuery.ts"


/** The channel db/003_notify.sql's trigger notifies, with the table name as payload. */
const notifyChannel = "food_orders"

/** A transaction open this long holds capture back visibly; say who it is. */
const heldBackWarningSeconds = 30

/** OrderSource over `@effect/sql-pg`; the table name was validated as a plain identifier. */
export const pgOrderSource = (table: SqlIdentifier) =>
  Layer.effect(
    OrderSource,
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      const horizonSql = captureHorizonSql(table)
      const afterSql = captureAfterSql(table)
      const firstSql = captureFirstSql(table)
      const [check] = yield* sql.unsafe<{ ok: boolean }>(canSeeOtherTransactionsSql).pipe(
        Effect.mapError((cause) => new SourceError({ reason: "unavailable", cause }))
      )
      if (check?.ok !== true) {
        return yield* new SourceError({
          reason: "query",
          cause: "the role cannot see other sessions' transactions, so late commits could be missed; " +
            "run: GRANT pg_read_all_stats TO <role>"
        })
      }
      let lastHeldBackCheck = 0
      /**
       * Capture waits for the oldest open transaction; an abandoned "idle in transaction" session
       * would stall it silently, so name it (at most every 30 s, and only when caught up).
       */
      const reportHeldBack = Effect.gen(function*() {
        if (Date.now() - lastHeldBackCheck < heldBackWarningSeconds * 1000) return
        lastHeldBackCheck = Date.now()
        const [oldest] = yield* sql.unsafe<{ pid: number; application_name: string; state: string; seconds: number }>(
          oldestOpenTransactionSql
        )
        if (oldest !== undefined && oldest.seconds > heldBackWarningSeconds) {
          yield* Effect.logWarning("capture held back by an open transaction").pipe(Effect.annotateLogs({
            pid: oldest.pid,
            application_name: oldest.application_name,
            state: oldest.state,
            open_seconds: Math.round(oldest.seconds)
          }))
        }
      }).pipe(Effect.ignore)

      const changes = sql.listen(notifyChannel).pipe(
        Stream.filter((payload) => payload === table),
        Stream.as(undefined),
        Stream.mapError((cause) => new SourceError({ reason: "unavailable", cause }))
      )

      return OrderSource.of({
        changes,
        readAfter: Effect.fn("OrderSource.readAfter")(function*(after, limit) {
          const unavailable = (cause: unknown) => new SourceError({ reason: "unavailable", cause })
          const [bound] = yield* sql.unsafe<{ horizon: string; held_back_seconds: number; newest_seconds: number | null }>(
            horizonSql
          ).pipe(Effect.mapError(unavailable))
          const horizon = bound!.horizon
          yield* Metric.set(captureHeldBackSeconds, Math.max(0, bound!.held_back_seconds))
          if (bound!.newest_seconds !== null) yield* Metric.set(sourceNewestSeconds, bound!.newest_seconds)
          const rows = yield* (after === null
            ? sql.unsafe(firstSql, [horizon, limit])
            : sql.unsafe(afterSql, [formatIsoMicros(after.created_at), after.order_id, horizon, limit])).pipe(
              Effect.mapError(unavailable)
            )
          if (rows.length < limit) yield* reportHeldBack
          const decoded = decodeOrderRows(rows)
          if (Either.isLeft(decoded)) {
            return yield* new SourceError({ reason: "decode", cause: ParseResult.TreeFormatter.formatErrorSync(decoded.left) })
          }
          return decoded.right
        })
      })
    })
  )
