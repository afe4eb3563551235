import { Effect } from "effect"
import * as Path from "node:path"
import { openLake, type QueryResult, runQuery } from "../analytics/lakeQuery.ts"

const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`

/** DuckDB's reading of the lake, the one every analyst would use: `read_parquet`, hive partitions on. */
export const lakeGlob = (lakePath: string) => Path.join(lakePath, "**", "*.parquet")

/** The questions the summary answers, over the view `orders` that `openLake` defines. */
export const summaryQueries = {
  perDate: `SELECT date, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY date ORDER BY date`,
  topRestaurants: `SELECT restaurant_name, count(*) AS orders, sum(amount) AS revenue
    FROM orders GROUP BY restaurant_name ORDER BY revenue DESC, restaurant_name LIMIT 5`,
  statuses: `SELECT order_status, count(*) AS orders FROM orders GROUP BY order_status ORDER BY orders DESC, order_status`
} as const

export interface LakeSummary {
  readonly rows: number
  readonly distinctIds: number
  readonly files: number
  readonly perDate: QueryResult
  readonly topRestaurants: QueryResult
  readonly statuses: QueryResult
}

const numberAt = (result: QueryResult, column = 0) => Number(result.rows[0]?.[column] ?? 0)

/** Reads the lake back with DuckDB, independently of what the pipeline believes it wrote. */
export const summariseLake = Effect.fn("Demo.summariseLake")(function*(lakePath: string) {
  const connection = yield* openLake(lakePath)
  const query = (sql: string) => runQuery(connection, sql)
  const totals = yield* query("SELECT count(*), count(DISTINCT order_id) FROM orders")
  return {
    rows: numberAt(totals, 0),
    distinctIds: numberAt(totals, 1),
    files: numberAt(yield* query(`SELECT count(*) FROM glob(${quoteLiteral(lakeGlob(lakePath))})`)),
    perDate: yield* query(summaryQueries.perDate),
    topRestaurants: yield* query(summaryQueries.topRestaurants),
    statuses: yield* query(summaryQueries.statuses)
  } satisfies LakeSummary
}, Effect.scoped)
