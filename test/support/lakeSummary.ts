import { DuckDBInstance } from "@duckdb/node-api"
import { expect } from "vitest"

export interface LakeSummary {
  rows: number
  distinctIds: number
  sum: string
  minCreated: string
  maxCreated: string
  perDate: Record<string, number>
  types: Record<string, string>
  files: number
}

/** What DuckDB reads from the lake (hive partitions on); fails if any row sits in the wrong date partition. */
export const summariseLake = async (lake: string): Promise<LakeSummary> => {
  const instance = await DuckDBInstance.create(":memory:")
  const db = await instance.connect()
  try {
    const source = `read_parquet('${lake}/**/*.parquet', hive_partitioning = true)`
    const totals = (await db.runAndReadAll(`
      SELECT count(*)::BIGINT AS rows, count(DISTINCT order_id)::BIGINT AS ids, sum(amount)::VARCHAR AS sum,
             strftime(min(created_at) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS min_created,
             strftime(max(created_at) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS max_created,
             count(DISTINCT filename)::BIGINT AS files
      FROM read_parquet('${lake}/**/*.parquet', hive_partitioning = true, filename = true)`)).getRowObjectsJson()[0]!
    const perDate = (await db.runAndReadAll(
      `SELECT date::VARCHAR AS date, count(*)::BIGINT AS n FROM ${source} GROUP BY 1 ORDER BY 1`
    )).getRowObjectsJson()
    const mismatched = (await db.runAndReadAll(
      `SELECT count(*)::BIGINT AS n FROM ${source} WHERE (created_at AT TIME ZONE 'UTC')::DATE <> date`
    )).getRowObjectsJson()[0]!
    expect(Number(mismatched["n"])).toBe(0)
    const types = (await db.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjectsJson()
    return {
      rows: Number(totals["rows"]),
      distinctIds: Number(totals["ids"]),
      sum: String(totals["sum"]),
      minCreated: String(totals["min_created"]),
      maxCreated: String(totals["max_created"]),
      files: Number(totals["files"]),
      perDate: Object.fromEntries(perDate.map((r) => [String(r["date"]), Number(r["n"])])),
      types: Object.fromEntries(types.map((r) => [String(r["column_name"]), String(r["column_type"])]))
    }
  } finally {
    db.closeSync()
    instance.closeSync()
  }
}
