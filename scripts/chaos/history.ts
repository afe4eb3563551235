import { Effect } from "effect"
import type pg from "pg"
import { openLake, runQuery } from "../../src/analytics/lakeQuery.ts"
import type { ChangeLedger, LedgerOp } from "./changeLedger.ts"

/**
 * The lake's change history (order_changes, logical capture) against what the run committed: every
 * change once (no (order_id, commit_lsn, change_seq) twice), per order as many changes of each op as
 * the run's ledger holds (its inserts, lifecycle steps, multi-statement transactions, the large
 * update; a snapshot row for orders there before the producer first started), and each order's last
 * change agreeing with its final state: the row PostgreSQL has now, or a delete for an order that is gone.
 */
export interface HistoryCheck {
  readonly rows: number
  readonly byOp: Readonly<Record<string, number>>
  /** What the run committed, by op. */
  readonly expectedByOp: Readonly<Record<LedgerOp, number>>
  readonly orders: number
  /** Rows beyond one per (order_id, commit_lsn, change_seq). */
  readonly repeated: number
  /** Orders whose changes (count per op) differ from the ledger's. */
  readonly countMismatches: number
  /** Orders in the history the run never committed a change of. */
  readonly unknownOrders: number
  /** Orders the run changed that have no history at all. */
  readonly absentOrders: number
  /** Orders whose last change is not their final state (a delete for a live order, a non-delete for a gone one, or other values). */
  readonly lastStateMismatches: number
  readonly samples: {
    readonly repeated: ReadonlyArray<string>
    readonly countMismatches: ReadonlyArray<{ id: number; lake: string; committed: string }>
    readonly unknownOrders: ReadonlyArray<number>
    readonly absentOrders: ReadonlyArray<number>
    readonly lastStateMismatches: ReadonlyArray<{ id: number; source: string; lake: string }>
  }
}

const opCounts = (ops: ReadonlyArray<string>) => {
  const counts: Record<string, number> = {}
  for (const op of ops) counts[op] = (counts[op] ?? 0) + 1
  return Object.keys(counts).sort().map((op) => `${op}×${counts[op]}`).join(" ")
}

export const checkHistory = async (pool: pg.Pool, table: string, lake: string, ledger: ChangeLedger): Promise<HistoryCheck> => {
  const source = await pool.query({
    text: `SELECT order_id, customer_name, restaurant_name, item, amount::text AS amount, order_status,
                  to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
           FROM "${table}"`,
    rowMode: "array"
  })
  const finalRows = new Map<number, string>(source.rows.map((r) => [Number(r[0]), JSON.stringify(r.map((v) => (v === null ? null : String(v))))]))

  const read = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const db = yield* openLake(lake)
    const byOp = yield* runQuery(db, "SELECT op, count(*)::BIGINT FROM order_changes GROUP BY op")
    const repeated = yield* runQuery(db, `SELECT order_id::VARCHAR || '@' || commit_lsn::VARCHAR || '/' || change_seq::VARCHAR, count(*)::BIGINT
      FROM order_changes GROUP BY order_id, commit_lsn, change_seq HAVING count(*) > 1 ORDER BY 1`)
    const perOrder = yield* runQuery(db, `SELECT order_id::BIGINT, string_agg(op, ' ' ORDER BY commit_lsn, change_seq) FROM order_changes GROUP BY order_id`)
    const last = yield* runQuery(db, `SELECT order_id::BIGINT, op, customer_name, restaurant_name, item, amount::VARCHAR, order_status,
        strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')
      FROM (SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY commit_lsn DESC, change_seq DESC) AS rn FROM order_changes)
      WHERE rn = 1`)
    return { byOp, repeated, perOrder, last }
  })))

  const byOp = Object.fromEntries(read.byOp.rows.map(([op, n]) => [op ?? "null", Number(n)]))
  const repeatedRows = read.repeated.rows.reduce((n, r) => n + Number(r[1]) - 1, 0)
  const lakeOps = new Map<number, Array<string>>(read.perOrder.rows.map(([id, ops]) => [Number(id), (ops ?? "").split(" ")]))

  const countMismatches: Array<{ id: number; lake: string; committed: string }> = []
  const unknownOrders: Array<number> = []
  const absentOrders: Array<number> = []
  for (const [id, ops] of lakeOps) {
    const committed = ledger.perOrder.get(id)
    if (committed === undefined) unknownOrders.push(id)
    else if (opCounts(ops) !== opCounts(committed)) countMismatches.push({ id, lake: ops.join(" "), committed: committed.join(" ") })
  }
  for (const id of ledger.perOrder.keys()) if (!lakeOps.has(id)) absentOrders.push(id)

  const lastStateMismatches: Array<{ id: number; source: string; lake: string }> = []
  for (const [id, op, ...columns] of read.last.rows) {
    const orderId = Number(id)
    const final = finalRows.get(orderId)
    const lakeRow = JSON.stringify([String(orderId), ...columns])
    if (final === undefined) {
      if (op !== "delete") lastStateMismatches.push({ id: orderId, source: "(deleted)", lake: `${op} ${lakeRow}` })
    } else if (op === "delete" || lakeRow !== final) {
      lastStateMismatches.push({ id: orderId, source: final, lake: `${op} ${lakeRow}` })
    }
  }
  // A live order without any history is missing its changes too (counted in absentOrders when the run changed it).
  return {
    rows: Object.values(byOp).reduce((a, b) => a + b, 0),
    byOp,
    expectedByOp: { ...ledger.byOp },
    orders: lakeOps.size,
    repeated: repeatedRows,
    countMismatches: countMismatches.length,
    unknownOrders: unknownOrders.length,
    absentOrders: absentOrders.length,
    lastStateMismatches: lastStateMismatches.length,
    samples: {
      repeated: read.repeated.rows.slice(0, 10).map((r) => String(r[0])),
      countMismatches: countMismatches.slice(0, 5),
      unknownOrders: unknownOrders.slice(0, 20),
      absentOrders: absentOrders.slice(0, 20),
      lastStateMismatches: lastStateMismatches.slice(0, 5)
    }
  }
}

/** The history's row count (the drain's progress), 0 while there is no history table yet. */
export const historyRows = async (lake: string): Promise<number> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const db = yield* openLake(lake)
    const result = yield* runQuery(db, "SELECT count(*)::BIGINT FROM order_changes")
    return Number(result.rows[0]![0])
  })))
