import { Effect, Either, ParseResult } from "effect"
import type pg from "pg"
import { quoteIdentifier, type SqlIdentifier } from "../../../config/Identifiers.ts"
import { decodeOrderRows, type Order } from "../../../domain/Order.ts"
import { query, reservedClient } from "./pgConnection.ts"

/** The poll query's columns: NUMERIC and TIMESTAMP as text, the latter as ISO-8601 UTC. */
const columns = `o.order_id, o.customer_name, o.restaurant_name, o.item, o.amount::text AS amount, o.order_status,
    to_char(o.created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at`

export interface SnapshotChunk {
  readonly orders: ReadonlyArray<Order>
  /** The chunk's last order_id (of every row read, decodable or not): where the next read starts. */
  readonly lastOrderId: number
  /** The chunk filled its read: more rows may follow. */
  readonly full: boolean
  /** Rows that are not orders (e.g. a NULL created_at): logged and counted by the caller, not published. */
  readonly skipped: ReadonlyArray<{ readonly orderId: number; readonly problem: string }>
}

const decodeChunk = (rows: ReadonlyArray<Record<string, unknown>>) => {
  const all = decodeOrderRows(rows)
  if (Either.isRight(all)) return { orders: all.right, skipped: [] }
  const orders: Array<Order> = []
  const skipped: Array<{ orderId: number; problem: string }> = []
  for (const row of rows) {
    const one = decodeOrderRows([row])
    if (Either.isRight(one)) orders.push(one.right[0]!)
    else skipped.push({ orderId: Number(row["order_id"]), problem: ParseResult.TreeFormatter.formatErrorSync(one.left) })
  }
  return { orders, skipped }
}

/**
 * Reads the table in order_id order, `chunk` rows at a time, inside one REPEATABLE READ transaction:
 * as of the exported snapshot of the slot's creation when `exported` is given, else as of now (a
 * resumed snapshot). Each chunk is handed to `onChunk` (published, progress saved) before the next
 * is read, so at most one chunk is in memory.
 */
export const readSnapshot = <E, R>(
  pool: pg.Pool,
  table: SqlIdentifier,
  options: { readonly exported: string | null; readonly after: number | null; readonly chunk: number },
  onChunk: (chunk: SnapshotChunk) => Effect.Effect<void, E, R>
) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* reservedClient(pool)
    yield* query(client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    // Before any other statement of the transaction; snapshot names are [0-9A-F-]+.
    if (options.exported !== null) yield* query(client, `SET TRANSACTION SNAPSHOT '${options.exported.replace(/[^0-9A-Fa-f-]/g, "")}'`)
    const first = `SELECT ${columns} FROM ${quoteIdentifier(table)} AS o ORDER BY o.order_id LIMIT $1`
    const next = `SELECT ${columns} FROM ${quoteIdentifier(table)} AS o WHERE o.order_id > $1 ORDER BY o.order_id LIMIT $2`
    let after = options.after
    while (true) {
      const rows = yield* (after === null
        ? query<Record<string, unknown>>(client, first, [options.chunk])
        : query<Record<string, unknown>>(client, next, [after, options.chunk]))
      if (rows.length === 0) break
      const { orders, skipped } = decodeChunk(rows)
      const lastOrderId = Number(rows[rows.length - 1]!["order_id"])
      yield* onChunk({ orders, lastOrderId, full: rows.length === options.chunk, skipped })
      after = lastOrderId
      if (rows.length < options.chunk) break
    }
    yield* query(client, "COMMIT")
  }))
