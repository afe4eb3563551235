import { Effect } from "effect"
import { openLakeVersion, type QueryResult, readLakeVersion, runQuery } from "../analytics/lakeQuery.ts"

/** The questions the summary answers, over the view `orders` that `openLake` defines. */
export const summaryQueries = {
  perDate: `SELECT date, count(*) AS orders, sum(amount) AS revenue FROM orders GROUP BY date ORDER BY date`,
  topRestaurants: `SELECT restaurant_name, count(*) AS orders, sum(amount) AS revenue
    FROM orders GROUP BY restaurant_name ORDER BY revenue DESC, restaurant_name LIMIT 5`,
  statuses: `SELECT order_status, count(*) AS orders FROM orders GROUP BY order_status ORDER BY orders DESC, order_status`,
  /** Over the view `restaurants`, the demo's second table. */
  restaurantsPerCity: `SELECT city, count(*) AS restaurants, count(rating) AS rated, max(opened_at) AS last_opened
    FROM restaurants GROUP BY city ORDER BY restaurants DESC, city`
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
  readonly restaurants: {
    readonly version: number
    readonly rows: number
    readonly distinctIds: number
    readonly perCity: QueryResult
  }
}

const numberAt = (result: QueryResult, column = 0) => Number(result.rows[0]?.[column] ?? 0)

/**
 * Reads the lake back with DuckDB, independently of what the pipeline believes it wrote: each table's
 * current version, exactly the files it names.
 */
export const summariseLake = Effect.fn("Demo.summariseLake")(function*(lakePath: string, restaurantsPath: string) {
  const lake = yield* readLakeVersion(lakePath)
  const restaurants = yield* readLakeVersion(restaurantsPath)
  const connection = yield* openLakeVersion(lake, undefined, [{ name: "restaurants", lake: restaurants, changes: undefined }])
  const query = (sql: string) => runQuery(connection, sql)
  const totals = yield* query("SELECT count(*), count(DISTINCT order_id) FROM orders")
  const restaurantCounts = yield* query("SELECT count(*), count(DISTINCT restaurant_id) FROM restaurants")
  return {
    version: lake.version,
    rows: numberAt(totals, 0),
    distinctIds: numberAt(totals, 1),
    files: lake.files.length,
    perDate: yield* query(summaryQueries.perDate),
    topRestaurants: yield* query(summaryQueries.topRestaurants),
    statuses: yield* query(summaryQueries.statuses),
    restaurants: {
      version: restaurants.version,
      rows: numberAt(restaurantCounts, 0),
      distinctIds: numberAt(restaurantCounts, 1),
      perCity: yield* query(summaryQueries.restaurantsPerCity)
    }
  } satisfies LakeSummary
}, Effect.scoped)
