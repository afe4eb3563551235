/**
 * The benchmark's source tables: created with the project's DDL (scripts/stack/sql.ts), filled
 * server-side (no rows cross the wire: INSERT … SELECT over generate_series, with the generator's
 * restaurants, dishes, prices and status weights), dropped at the end.
 */
import pg from "pg"
import { assertTableName, ordersTableStatements } from "../scripts/stack/sql.ts"
import { customerNames, menus, statusWeights } from "../src/generator/menu.ts"
import { onCleanup } from "./cleanup.ts"

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`

const menuRows = Object.entries(menus).flatMap(([restaurant, items]) => items.map((m) => [restaurant, m.item, m.price] as const))

const menuValues = menuRows.map(([restaurant, item, price], i) => `(${i}, ${literal(restaurant)}, ${literal(item)}, ${price})`).join(",\n    ")

const customers = `ARRAY[${customerNames.map(literal).join(",")}]`

/** Status by weight, from one uniform random number `r`. */
const statusCase = (() => {
  let cumulative = 0
  const arms = statusWeights.map(([name, weight]) => {
    cumulative += weight
    return `WHEN r < ${cumulative.toFixed(4)} THEN ${literal(name)}`
  })
  return `CASE ${arms.join(" ")} ELSE ${literal(statusWeights[0]![0])} END`
})()

/**
 * Rows of realistic orders, one per `g` of `generate_series(1, $1)`. Every volatile `random()` sits
 * in the inner select list, so it is evaluated once per row.
 */
const generatedRows = (createdAt: string | null) => `
  SELECT (${customers})[1 + x.ci] AS customer_name, m.restaurant AS restaurant_name, m.item,
         (m.price * x.qty)::numeric / 100 AS amount, ${statusCase.replaceAll("r <", "x.r <")} AS order_status
         ${createdAt === null ? "" : `, ${createdAt} AS created_at`}
  FROM (SELECT g, random() AS r, floor(random() * ${menuRows.length})::int AS mi,
               floor(random() * ${customerNames.length})::int AS ci, 1 + floor(random() * 3)::int AS qty
        FROM generate_series(1, $1::int) g) x
  JOIN (VALUES
    ${menuValues}
  ) AS m(idx, restaurant, item, price) ON m.idx = x.mi`

/**
 * `$1` orders committed now (created_at from the column default, like any live writer), returning
 * the first and last order_id and the count: one statement, one transaction.
 */
export const insertNowSql = (table: string) => `
WITH ins AS (
  INSERT INTO "${assertTableName(table)}" (customer_name, restaurant_name, item, amount, order_status)
  ${generatedRows(null)}
  RETURNING order_id
)
SELECT min(order_id)::int AS first, max(order_id)::int AS last, count(*)::int AS n FROM ins`

/** `$1` historical orders, created_at spread evenly from `$2` (timestamp, UTC) by `$3` microseconds each. */
export const insertHistorySql = (table: string) => `
INSERT INTO "${assertTableName(table)}" (customer_name, restaurant_name, item, amount, order_status, created_at)
${generatedRows("$2::timestamp + (x.g * $3::bigint) * interval '1 microsecond'")}`

export const withClient = async <A>(pgUrl: string, f: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: pgUrl, application_name: "food-orders-bench" })
  await client.connect()
  try {
    return await f(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Creates the table with the project's DDL (dropped again by the cleanup registry). `complete`
 * false runs only the CREATE TABLE, so a bulk load does not maintain the capture index (or fire
 * triggers) row by row; `completeTable` then runs the rest of the DDL.
 */
export const createTable = async (pgUrl: string, table: string, complete: boolean): Promise<void> => {
  const [createTableSql, ...rest] = ordersTableStatements(table)
  await withClient(pgUrl, async (client) => {
    await client.query(createTableSql!)
    if (complete) for (const statement of rest) await client.query(statement)
  })
  onCleanup(`drop table ${table}`, () => dropTable(pgUrl, table))
}

/** The rest of the DDL after a bulk load (capture index, notify trigger, whatever sql.ts adds), then ANALYZE. */
export const completeTable = async (pgUrl: string, table: string): Promise<void> => {
  await withClient(pgUrl, async (client) => {
    for (const statement of ordersTableStatements(table).slice(1)) await client.query(statement)
    await client.query(`ANALYZE "${assertTableName(table)}"`)
  })
}

export const dropTable = (pgUrl: string, table: string): Promise<void> =>
  withClient(pgUrl, async (client) => {
    await client.query(`DROP TABLE IF EXISTS "${assertTableName(table)}"`)
  })

/**
 * Loads `rows` historical orders spread over the `days` days before one hour ago (so several UTC
 * dates, and all of them older than any open transaction), in chunks so that each statement stays short.
 * Then completes the DDL (capture index, trigger) and analyses. Returns the seconds it took.
 */
export const loadHistory = async (pgUrl: string, table: string, rows: number, days: number): Promise<number> => {
  const started = Date.now()
  const end = Date.now() - 3_600_000
  const stepMicros = Math.max(1, Math.floor((days * 86_400_000_000) / rows))
  const start = new Date(end - (rows * stepMicros) / 1000).toISOString().replace("T", " ").replace("Z", "")
  const chunk = 250_000
  await withClient(pgUrl, async (client) => {
    for (let done = 0; done < rows; done += chunk) {
      const n = Math.min(chunk, rows - done)
      const chunkStart = new Date(Date.parse(`${start}Z`) + (done * stepMicros) / 1000).toISOString().replace("T", " ").replace("Z", "")
      await client.query(insertHistorySql(table), [n, chunkStart, stepMicros])
    }
  })
  await completeTable(pgUrl, table)
  return (Date.now() - started) / 1000
}

export const countRows = (pgUrl: string, table: string): Promise<number> =>
  withClient(pgUrl, async (client) =>
    Number((await client.query(`SELECT count(*)::int AS n FROM "${assertTableName(table)}"`)).rows[0]!.n)
  )
