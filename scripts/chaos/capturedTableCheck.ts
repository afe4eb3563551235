import { Effect } from "effect"
import type pg from "pg"
import { openLake, readLakeVersion, runQuery } from "../../src/analytics/lakeQuery.ts"
import type { ChangeLedger, LedgerOp } from "./changeLedger.ts"

/**
 * A table of `tables:` (the run's restaurants) in the lake against PostgreSQL, as DuckDB reads the
 * Delta table's exact files: every row by key with every column spelled the same way on both sides
 * (numeric as text, timestamptz as epoch micros, jsonb as its text, arrays as JSON), the partition
 * each row sits in; and its history `<name>_changes`: every committed change once (no
 * (_commit_lsn, _change_seq) twice), per op and per key as many as the run's ledger holds, each
 * key's last change its final state (a delete for a row that is gone).
 */

/** A column compared: its name, its text in PostgreSQL, its text in DuckDB (`$c` stands for the quoted column). */
export interface ComparedColumn {
  readonly name: string
  readonly pg: string
  readonly lake: string
}

export interface CapturedTableCheck {
  readonly table: string
  readonly sourceRows: number
  readonly lakeRows: number
  readonly lakeFiles: number
  readonly missing: number
  readonly duplicated: number
  readonly unexpected: number
  readonly mismatched: number
  /** Rows whose partition value (from the log) is not the UTC date of their partition column. */
  readonly wrongPartition: number
  readonly history: {
    readonly rows: number
    readonly byOp: Readonly<Record<string, number>>
    readonly expectedByOp: Readonly<Record<LedgerOp, number>>
    readonly keys: number
    /** Rows beyond one per (_commit_lsn, _change_seq). */
    readonly repeated: number
    readonly countMismatches: number
    readonly unknownKeys: number
    readonly absentKeys: number
    readonly lastStateMismatches: number
  }
  readonly samples: {
    readonly missing: ReadonlyArray<string>
    readonly duplicated: ReadonlyArray<string>
    readonly unexpected: ReadonlyArray<string>
    readonly mismatched: ReadonlyArray<{ key: string; source: string; lake: string }>
    readonly repeated: ReadonlyArray<string>
    readonly countMismatches: ReadonlyArray<{ key: string; lake: string; committed: string }>
    readonly lastStateMismatches: ReadonlyArray<{ key: string; source: string; lake: string }>
  }
}

export interface CapturedTableTarget {
  /** The PostgreSQL table. */
  readonly table: string
  /** Its name in the lake (the DuckDB view), and its Delta table's path; the history is `<path>_changes`. */
  readonly lakeName: string
  readonly path: string
  /** The orders table's path (openLake reads it too). */
  readonly ordersPath: string
  /** The key column (a bigint), first of `columns`. */
  readonly key: string
  readonly columns: ReadonlyArray<ComparedColumn>
  /** The partition column and how DuckDB names the partition value (the view's column). */
  readonly partition?: { readonly column: string; readonly value: string }
}

const opCounts = (ops: ReadonlyArray<string>) => {
  const counts: Record<string, number> = {}
  for (const op of ops) counts[op] = (counts[op] ?? 0) + 1
  return Object.keys(counts).sort().map((op) => `${op}×${counts[op]}`).join(" ")
}

const quote = (name: string) => `"${name.replaceAll('"', '""')}"`

export const checkCapturedTable = async (pool: pg.Pool, target: CapturedTableTarget, ledger: ChangeLedger): Promise<CapturedTableCheck> => {
  const { rows: present } = await pool.query<{ column_name: string }>(
    "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
    [target.table]
  )
  const pgHas = new Set(present.map((r) => r.column_name))
  const source = await pool.query({
    text: `SELECT ${target.columns.map((c) => (pgHas.has(c.name) ? c.pg.replaceAll("$c", quote(c.name)) : "NULL")).join(", ")} FROM ${quote(target.table)}`,
    rowMode: "array"
  })
  const show = (row: ReadonlyArray<unknown>) => JSON.stringify(row.map((v) => (v === null || v === undefined ? null : String(v))))
  const finalRows = new Map<string, string>(source.rows.map((r) => [String(r[0]), show(r)]))

  const view = quote(target.lakeName)
  const changes = quote(`${target.lakeName}_changes`)
  const read = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const db = yield* openLake(target.ordersPath, {}, undefined, [{ name: target.lakeName, path: target.path, changesPath: `${target.path}_changes` }])
    const files = (yield* readLakeVersion(target.path)).files.length
    const described = yield* runQuery(db, `SELECT column_name FROM (DESCRIBE ${view})`)
    const lakeHas = new Set(described.rows.map((r) => String(r[0])))
    if (!lakeHas.has(target.key)) return undefined // no file yet
    const select = (columns: ReadonlyArray<ComparedColumn>) =>
      columns.map((c) => (lakeHas.has(c.name) ? c.lake.replaceAll("$c", quote(c.name)) : "NULL")).join(", ")
    const rows = yield* runQuery(db, `SELECT ${select(target.columns)} FROM ${view}`)
    const wrong = target.partition === undefined
      ? { rows: [["0"]] }
      : yield* runQuery(db, `SELECT count(*) FILTER (WHERE ${quote(target.partition.value)} IS DISTINCT FROM (${quote(target.partition.column)} AT TIME ZONE 'UTC')::DATE)::BIGINT FROM ${view}`)
    const historyColumns = (yield* runQuery(db, `SELECT column_name FROM (DESCRIBE ${changes})`)).rows.map((r) => String(r[0]))
    const historyHas = new Set(historyColumns)
    if (!historyHas.has("_change_op")) return { rows, files, wrong, history: undefined }
    const selectHistory = target.columns.map((c) => (historyHas.has(c.name) ? c.lake.replaceAll("$c", quote(c.name)) : "NULL")).join(", ")
    const byOp = yield* runQuery(db, `SELECT _change_op, count(*)::BIGINT FROM ${changes} GROUP BY 1`)
    const repeated = yield* runQuery(db, `SELECT _commit_lsn::VARCHAR || '/' || _change_seq::VARCHAR, count(*)::BIGINT
      FROM ${changes} GROUP BY _commit_lsn, _change_seq HAVING count(*) > 1 ORDER BY 1`)
    const perKey = yield* runQuery(db, `SELECT ${quote(target.key)}::VARCHAR, string_agg(_change_op, ' ' ORDER BY _commit_lsn, _change_seq) FROM ${changes} GROUP BY 1`)
    const last = yield* runQuery(db, `SELECT _change_op, ${selectHistory}
      FROM (SELECT *, row_number() OVER (PARTITION BY ${quote(target.key)} ORDER BY _commit_lsn DESC, _change_seq DESC) AS rn FROM ${changes})
      WHERE rn = 1`)
    return { rows, files, wrong, history: { byOp, repeated, perKey, last } }
  })))

  const lakeRows = read?.rows.rows ?? []
  const lakeByKey = new Map<string, Array<string>>()
  for (const row of lakeRows) {
    const key = String(row[0])
    const same = lakeByKey.get(key)
    if (same === undefined) lakeByKey.set(key, [show(row)])
    else same.push(show(row))
  }
  const missing = [...finalRows.keys()].filter((key) => !lakeByKey.has(key))
  const unexpected = [...lakeByKey.keys()].filter((key) => !finalRows.has(key))
  const duplicated = [...lakeByKey].filter(([, rows]) => rows.length > 1).map(([key]) => key)
  const mismatched: Array<{ key: string; source: string; lake: string }> = []
  for (const [key, rows] of lakeByKey) {
    const expected = finalRows.get(key)
    if (expected === undefined) continue
    for (const row of rows) if (row !== expected) mismatched.push({ key, source: expected, lake: row })
  }

  const h = read?.history
  const byOp = Object.fromEntries((h?.byOp.rows ?? []).map(([op, n]) => [op ?? "null", Number(n)]))
  const lakeOps = new Map<string, Array<string>>((h?.perKey.rows ?? []).map(([key, ops]) => [String(key), (ops ?? "").split(" ")]))
  const countMismatches: Array<{ key: string; lake: string; committed: string }> = []
  let unknownKeys = 0
  for (const [key, ops] of lakeOps) {
    const committed = ledger.perOrder.get(Number(key))
    if (committed === undefined) unknownKeys += 1
    else if (opCounts(ops) !== opCounts(committed)) countMismatches.push({ key, lake: ops.join(" "), committed: committed.join(" ") })
  }
  let absentKeys = 0
  for (const id of ledger.perOrder.keys()) if (!lakeOps.has(String(id))) absentKeys += 1
  const lastStateMismatches: Array<{ key: string; source: string; lake: string }> = []
  for (const [op, ...columns] of h?.last.rows ?? []) {
    const key = String(columns[0])
    const final = finalRows.get(key)
    const lakeRow = show(columns)
    if (final === undefined) {
      if (op !== "delete") lastStateMismatches.push({ key, source: "(deleted)", lake: `${op} ${lakeRow}` })
    } else if (op === "delete" || lakeRow !== final) {
      lastStateMismatches.push({ key, source: final, lake: `${op} ${lakeRow}` })
    }
  }
  return {
    table: target.table,
    sourceRows: finalRows.size,
    lakeRows: lakeRows.length,
    lakeFiles: read?.files ?? 0,
    missing: missing.length,
    duplicated: lakeRows.length - lakeByKey.size,
    unexpected: unexpected.length,
    mismatched: mismatched.length,
    wrongPartition: Number(read?.wrong.rows[0]?.[0] ?? 0),
    history: {
      rows: Object.values(byOp).reduce((a, b) => a + b, 0),
      byOp,
      expectedByOp: { ...ledger.byOp },
      keys: lakeOps.size,
      repeated: (h?.repeated.rows ?? []).reduce((n, r) => n + Number(r[1]) - 1, 0),
      countMismatches: countMismatches.length,
      unknownKeys,
      absentKeys,
      lastStateMismatches: lastStateMismatches.length
    },
    samples: {
      missing: missing.slice(0, 10),
      duplicated: duplicated.slice(0, 10),
      unexpected: unexpected.slice(0, 10),
      mismatched: mismatched.slice(0, 3),
      repeated: (h?.repeated.rows ?? []).slice(0, 10).map((r) => String(r[0])),
      countMismatches: countMismatches.slice(0, 3),
      lastStateMismatches: lastStateMismatches.slice(0, 3)
    }
  }
}

/**
 * The table's rows and its history's rows in the lake (the drain's progress), from the logs' file
 * stats (our writer gives every file its row count), so polling it does not start a DuckDB twice a
 * second beside a busy consumer; 0 while a table has no files yet.
 */
export const capturedTableCounts = async (path: string): Promise<{ rows: number; history: number }> => {
  const rowsOf = (table: string) =>
    readLakeVersion(table).pipe(
      Effect.map((version) => version.files.reduce((n, file) => n + (file.rows ?? Number.NaN), 0)),
      Effect.catchIf((error) => error._tag === "TableError" && error.reason === "missing", () => Effect.succeed(0))
    )
  const [rows, history] = await Effect.runPromise(Effect.all([rowsOf(path), rowsOf(`${path}_changes`)]))
  if (Number.isNaN(rows) || Number.isNaN(history)) throw new Error(`a file of ${path} has no row count in its stats`)
  return { rows, history }
}
