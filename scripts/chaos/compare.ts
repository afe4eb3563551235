import { DuckDBInstance } from "@duckdb/node-api"
import { Effect } from "effect"
import type pg from "pg"
import { ordersViewSql, readLakeVersion } from "../../src/analytics/lakeQuery.ts"

/**
 * PostgreSQL against the lake, as DuckDB reads the lake (a reader no one here wrote). Every order is
 * compared by id and by value, so a loss, a duplicate, a phantom (a rolled-back order) or a changed
 * value all show up with their ids.
 */
export interface LakeComparison {
  /** Committed orders in PostgreSQL. */
  readonly sourceRows: number
  readonly lakeRows: number
  readonly lakeDistinctIds: number
  readonly lakeFiles: number
  /** In PostgreSQL, not in the lake. */
  readonly missing: number
  /** Lake rows beyond one per order_id. */
  readonly duplicated: number
  /** In the lake, not in PostgreSQL (a rolled-back insert would land here). */
  readonly unexpected: number
  /** Present in both, with a different value in some column. */
  readonly mismatched: number
  /** Orders whose INSERT was rolled back, found in the lake anyway (also counted in `unexpected`). */
  readonly rolledBackInLake: number
  /** Rows in a date= partition other than their created_at's UTC date. */
  readonly wrongPartition: number
  readonly sourceSum: string
  readonly lakeSum: string
  /** Every missing id (up to 10,000), for the diagnosis. */
  readonly missingIds: ReadonlyArray<number>
  /** A few ids of each kind, for digging. */
  readonly samples: {
    readonly missing: ReadonlyArray<number>
    readonly duplicated: ReadonlyArray<number>
    readonly unexpected: ReadonlyArray<number>
    readonly mismatched: ReadonlyArray<{ id: number; source: string; lake: string }>
  }
}

type Row = readonly [number, string | null, string | null, string | null, string | null, string | null, string]

const showRow = (row: Row): string => JSON.stringify(row)

/**
 * The table's current version as DuckDB reads it: the view `orders` over exactly the files the log
 * names (the directory also holds compacted-away files and crash leftovers, which a glob would
 * count). Undefined when the version has no files.
 */
const lakeView = async (lake: string): Promise<{ view: string; files: number } | undefined> => {
  const { files } = await Effect.runPromise(readLakeVersion(lake))
  return files.length === 0 ? undefined : { view: ordersViewSql(files), files: files.length }
}

const withDuckDb = async <A>(use: (db: Awaited<ReturnType<DuckDBInstance["connect"]>>) => Promise<A>): Promise<A> => {
  const instance = await DuckDBInstance.create(":memory:")
  const db = await instance.connect()
  try {
    return await use(db)
  } finally {
    db.closeSync()
    instance.closeSync()
  }
}

/**
 * Rows and distinct ids in the table's current version. Log cleanup may remove a commit file while
 * it is being read; the caller polls, so such a read just fails and is asked again.
 */
export const lakeCounts = async (lake: string): Promise<{ rows: number; distinctIds: number }> => {
  const source = await lakeView(lake)
  if (source === undefined) return { rows: 0, distinctIds: 0 }
  return withDuckDb(async (db) => {
    await db.run(source.view)
    const [row] = (await db.runAndReadAll(
      `SELECT count(*)::BIGINT AS rows, count(DISTINCT order_id)::BIGINT AS ids FROM orders`
    )).getRowObjectsJson()
    return { rows: Number(row!["rows"]), distinctIds: Number(row!["ids"]) }
  })
}

const sample = <A>(items: Iterable<A>, n = 20): Array<A> => {
  const out: Array<A> = []
  for (const item of items) {
    if (out.length >= n) break
    out.push(item)
  }
  return out
}

export const compareLake = async (
  pool: pg.Pool,
  table: string,
  lake: string,
  rolledBackIds: ReadonlyArray<number> = []
): Promise<LakeComparison> => {
  const source = await pool.query({
    text: `SELECT order_id, customer_name, restaurant_name, item, amount::text AS amount, order_status,
                  to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
           FROM "${table}" ORDER BY order_id`,
    rowMode: "array"
  })
  const { rows: [sourceTotals] } = await pool.query<{ sum: string | null }>(`SELECT sum(amount)::text AS sum FROM "${table}"`)
  const sourceRows = new Map<number, Row>(source.rows.map((r) => [Number(r[0]), r as unknown as Row]))

  const version = await lakeView(lake)
  const lakeSide = version === undefined
    ? { rows: [] as Array<Row>, sum: "0", files: 0, wrongPartition: 0 }
    : await withDuckDb(async (db) => {
      await db.run(version.view)
      const rows = (await db.runAndReadAll(`
        SELECT order_id::BIGINT AS id, customer_name, restaurant_name, item, amount::VARCHAR AS amount, order_status,
               strftime(created_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') AS created_at
        FROM orders`)).getRows()
      const [totals] = (await db.runAndReadAll(`
        SELECT sum(amount)::VARCHAR AS sum,
               count(*) FILTER (WHERE (created_at AT TIME ZONE 'UTC')::DATE <> date)::BIGINT AS wrong_partition
        FROM orders`)).getRowObjectsJson()
      return {
        rows: rows.map((r): Row => [Number(r[0]), ...(r.slice(1).map((v) => (v === null ? null : String(v))) as [
          string | null, string | null, string | null, string | null, string | null, string
        ])]),
        sum: totals!["sum"] === null ? "0" : String(totals!["sum"]),
        files: version.files,
        wrongPartition: Number(totals!["wrong_partition"])
      }
    })

  const lakeById = new Map<number, Array<Row>>()
  for (const row of lakeSide.rows) {
    const same = lakeById.get(row[0])
    if (same === undefined) lakeById.set(row[0], [row])
    else same.push(row)
  }
  const missing = [...sourceRows.keys()].filter((id) => !lakeById.has(id))
  const unexpected = [...lakeById.keys()].filter((id) => !sourceRows.has(id)).sort((a, b) => a - b)
  const duplicatedIds = [...lakeById].filter(([, rows]) => rows.length > 1).map(([id]) => id).sort((a, b) => a - b)
  const mismatched: Array<{ id: number; source: string; lake: string }> = []
  for (const [id, rows] of lakeById) {
    const expected = sourceRows.get(id)
    if (expected === undefined) continue
    for (const row of rows) {
      if (showRow(row) !== showRow(expected)) mismatched.push({ id, source: showRow(expected), lake: showRow(row) })
    }
  }
  return {
    sourceRows: sourceRows.size,
    lakeRows: lakeSide.rows.length,
    lakeDistinctIds: lakeById.size,
    lakeFiles: lakeSide.files,
    missing: missing.length,
    duplicated: lakeSide.rows.length - lakeById.size,
    unexpected: unexpected.length,
    mismatched: mismatched.length,
    rolledBackInLake: rolledBackIds.filter((id) => lakeById.has(id)).length,
    wrongPartition: lakeSide.wrongPartition,
    missingIds: missing.slice(0, 10_000),
    sourceSum: sourceTotals?.sum ?? "0",
    lakeSum: lakeSide.sum,
    samples: {
      missing: sample(missing),
      duplicated: sample(duplicatedIds),
      unexpected: sample(unexpected),
      mismatched: sample(mismatched, 5)
    }
  }
}
