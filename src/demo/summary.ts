import { Effect } from "effect"
import { openLakeVersion, type QueryResult, readLakeVersion, runQuery } from "../analytics/lakeQuery.ts"

/** The questions the summary answers, over the view `orders` that `openLake` defines. */
export const summaryQueries = {
  perDate: `SELECT date, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY date ORDER BY date`,
  topRestaurants: `SELECT restaurant_name, count(*) AS orders, sum(amount) AS revenue
    FROM orders GROUP BY restaurant_name ORDER BY revenue DESC, restaurant_name LIMIT 5`,
  statuses: `SELECT order_status, count(*) AS orders FROM orders GROUP BY order_status ORDER BY orders DESC, order_status`
} as const

export interface LakeSummary {
  /** The table version read (-1: no table). */
  readonly version: number
  readonly rows: number
  readonly distinctIds: number
  readonly files: number
  readonly perDate: QueryResult
  readonly topRestaurants: QueryResult
  readonly statuses: QueryResult
}

const numberAt = (result: QueryResult, column = 0) => Number(result.rows[0]?.[column] ?? 0)

/**
 * Reads the lake back with DuckDB, independently of what the pipeline believes it wrote: the table's
 * current version, exactly the files it names.
 */
export const summariseLake = Effect.fn("Demo.summariseLake")(function*(lakePath: string) {
  const lake = yield* readLakeVersion(lakePath)
  const connection = yield* openLakeVersion(lake)
  const query = (sql: string) => runQuery(connection, sql)
  const totals = yield* query("SELECT count(*), count(DISTINCT order_id) FROM orders")
  return {
    version: lake.version,
    rows: numberAt(totals, 0),
    distinctIds: numberAt(totals, 1),
    files: lake.files.length,
    perDate: yield* query(summaryQueries.perDate),
    topRestaurants: yield* query(summaryQueries.topRestaurants),
    statuses: yield* query(summaryQueries.statuses)
  } satisfies LakeSummary
}, Effect.scoped)
