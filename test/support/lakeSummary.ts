import { Effect } from "effect"
import { expect } from "vitest"
import { openLakeVersion, readLakeVersion, runQuery } from "../../src/analytics/lakeQuery.ts"

export interface LakeSummary {
  /** The table version read (-1: no table yet). */
  version: number
  rows: number
  distinctIds: number
  sum: string
  minCreated: string
  maxCreated: string
  perDate: Record<string, number>
  types: Record<string, string>
  /** Data files of that version (files in the directory it does not name are not counted). */
  files: number
}

/**
 * What DuckDB reads from the table's current version (its exact files, `date` from the partition);
 * fails if any row sits in the wrong date partition.
 */
export const summariseLake = (lake: string): Promise<LakeSummary> =>
  Effect.runPromise(Effect.gen(function*() {
    const version = yield* readLakeVersion(lake)
    const db = yield* openLakeVersion(version)
    const query = (sql: string) =>
      runQuery(db, sql).pipe(Effect.map((r) => r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i] ?? null])))))
    const [totals] = yield* query(`
      SELECT count(*)::BIGINT AS rows, count(DISTINCT order_id)::BIGINT AS ids, sum(amount)::VARCHAR AS sum,
             strftime(min(created_at) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS min_created,
             strftime(max(created_at) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS max_created
      FROM orders`)
    const perDate = yield* query(`SELECT date::VARCHAR AS date, count(*)::BIGINT AS n FROM orders GROUP BY 1 ORDER BY 1`)
    const [mismatched] = yield* query(`SELECT count(*)::BIGINT AS n FROM orders WHERE (created_at AT TIME ZONE 'UTC')::DATE <> date`)
    expect(Number(mismatched!["n"])).toBe(0)
    const types = yield* query(`DESCRIBE SELECT * FROM orders`)
    return {
      version: version.version,
      rows: Number(totals!["rows"]),
      distinctIds: Number(totals!["ids"]),
      sum: String(totals!["sum"]),
      minCreated: String(totals!["min_created"]),
      maxCreated: String(totals!["max_created"]),
      files: version.files.length,
      perDate: Object.fromEntries(perDate.map((r) => [String(r["date"]), Number(r["n"])])),
      types: Object.fromEntries(types.map((r) => [String(r["column_name"]), String(r["column_type"])]))
    }
  }).pipe(Effect.scoped))
