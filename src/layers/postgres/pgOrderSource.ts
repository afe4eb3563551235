import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, ParseResult, Schema } from "effect"
import type { SqlIdentifier } from "../../config/Identifiers.ts"
import { formatIsoMicros } from "../../domain/Timestamp.ts"
import { OrderRow } from "../../domain/Order.ts"
import { SourceError } from "../../services/errors.ts"
import { OrderSource } from "../../services/OrderSource.ts"
import { canSeeOtherTransactionsSql, captureAfterSql, captureFirstSql } from "./captureQuery.ts"

const decodeRows = Schema.decodeUnknown(Schema.Array(OrderRow))

/** OrderSource over `@effect/sql-pg`; the table name was validated as a plain identifier. */
export const pgOrderSource = (table: SqlIdentifier) =>
  Layer.effect(
    OrderSource,
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
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
      return OrderSource.of({
        readAfter: Effect.fn("OrderSource.readAfter")(function*(after, limit) {
          const rows = yield* (after === null
            ? sql.unsafe(firstSql, [limit])
            : sql.unsafe(afterSql, [formatIsoMicros(after.created_at), after.order_id, limit])).pipe(
              Effect.mapError((cause) => new SourceError({ reason: "unavailable", cause }))
            )
          return yield* decodeRows(rows).pipe(
            Effect.mapError((error) =>
              new SourceError({ reason: "decode", cause: ParseResult.TreeFormatter.formatErrorSync(error) })
            )
          )
        })
      })
    })
  )
