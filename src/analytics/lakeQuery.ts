import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api"
import { Data, Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"

export class LakeQueryError extends Data.TaggedError("LakeQueryError")<{ readonly sql: string; readonly cause: unknown }> {
  override get message() {
    return `query failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}\n  ${this.sql}`
  }
}

const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`

/** Whether the lake holds any Parquet file yet (DuckDB's read_parquet fails on an empty glob). */
export const lakeHasFiles = (lakePath: string): boolean =>
  Fs.existsSync(lakePath) && Fs.readdirSync(lakePath, { recursive: true }).some((f) => String(f).endsWith(".parquet"))

/**
 * An in-memory DuckDB with the view `orders` over the lake (hive partitions on, so `date` is a
 * DATE column). An empty or missing lake gives an empty view with the lake's columns.
 */
export const openLake = (lakePath: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const instance = await DuckDBInstance.create(":memory:")
        const connection = await instance.connect()
        const glob = Path.join(lakePath, "**", "*.parquet")
        await connection.run(lakeHasFiles(lakePath)
          ? `CREATE VIEW orders AS SELECT * FROM read_parquet(${quoteLiteral(glob)}, hive_partitioning = true)`
          : `CREATE VIEW orders AS SELECT NULL::BIGINT AS order_id, NULL::VARCHAR AS customer_name,
               NULL::VARCHAR AS restaurant_name, NULL::VARCHAR AS item, NULL::DECIMAL(10,2) AS amount,
               NULL::VARCHAR AS order_status, NULL::TIMESTAMPTZ AS created_at, NULL::DATE AS date WHERE false`)
        await connection.run("SET TimeZone = 'UTC'")
        return { instance, connection }
      },
      catch: (cause) => new LakeQueryError({ sql: "(open lake)", cause })
    }),
    ({ connection, instance }) => Effect.sync(() => {
      connection.closeSync()
      instance.closeSync()
    })
  ).pipe(Effect.map(({ connection }) => connection))

export interface QueryResult {
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string | null>>
}

/** Runs SQL and returns every value rendered as text (DECIMALs and timestamps exactly as DuckDB prints them). */
export const runQuery = (connection: DuckDBConnection, sql: string) =>
  Effect.tryPromise({
    try: async (): Promise<QueryResult> => {
      const reader = await connection.runAndReadAll(sql)
      const columns = reader.columnNames()
      const rows = reader.getRowsJson().map((row) => row.map((v) => (v === null ? null : typeof v === "object" ? JSON.stringify(v) : String(v))))
      return { columns, rows }
    },
    catch: (cause) => new LakeQueryError({ sql, cause })
  })

/** A plain-text table for terminals. */
export const formatTable = ({ columns, rows }: QueryResult): string => {
  const cells = [columns, ...rows.map((r) => r.map((v) => v ?? "NULL"))]
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)))
  const line = (r: ReadonlyArray<string>) => r.map((v, i) => v.padEnd(widths[i]!)).join(" | ").trimEnd()
  return [line(columns), widths.map((w) => "-".repeat(w)).join("-+-"), ...rows.map((r) => line(r.map((v) => v ?? "NULL")))]
    .join("\n") + `\n(${rows.length} row${rows.length === 1 ? "" : "s"})\n`
}

/** Partitions, files, rows, bytes, oldest and newest order: the lake at a glance. */
export const lakeStatsSql = (lakePath: string) => {
  const glob = quoteLiteral(Path.join(lakePath, "**", "*.parquet"))
  return `
WITH files AS (
  SELECT file_name, sum(total_compressed_size) AS bytes FROM parquet_metadata(${glob}) GROUP BY file_name
), rows AS (
  SELECT date, filename, count(*) AS n, min(created_at) AS oldest, max(created_at) AS newest
  FROM read_parquet(${glob}, hive_partitioning = true, filename = true) GROUP BY date, filename
)
SELECT date::VARCHAR AS date, count(*) AS files, sum(n) AS rows, sum(f.bytes) AS bytes,
       min(oldest)::VARCHAR AS oldest_order, max(newest)::VARCHAR AS newest_order
FROM rows JOIN files f ON f.file_name = rows.filename
GROUP BY ROLLUP (date)
ORDER BY date NULLS LAST`
}
