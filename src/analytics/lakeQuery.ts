import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api"
import { Data, Effect, type Layer, Logger, LogLevel } from "effect"
import * as Path from "node:path"
import { changesTableBeside } from "../config/PipelineConfig.ts"
import { tableStorageFor } from "../layers/storage/tableStorageFor.ts"
import { isS3Path } from "../layers/storage/s3Location.ts"
import type { StorageError } from "../services/errors.ts"
import { TableStorage } from "../services/TableStorage.ts"
import { dateOf, storagePathOf } from "../table/dataPaths.ts"
import { loadSnapshot, type SnapshotRequest } from "../table/readLog.ts"
import { statsOf } from "../table/snapshot.ts"
import { TableError } from "../table/tableErrors.ts"

export class LakeQueryError extends Data.TaggedError("LakeQueryError")<{ readonly sql: string; readonly cause: unknown }> {
  override get message() {
    return `query failed: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}\n  ${this.sql}`
  }
}

const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`
const sqlOrNull = (value: string | number | undefined, cast: string) =>
  value === undefined ? `NULL::${cast}` : `${typeof value === "number" ? String(value) : quoteLiteral(value)}::${cast}`

/** One live data file of a table version, as the log describes it. */
export interface LakeDataFile {
  /** Where DuckDB reads it: an absolute path (a file of an object-store table is copied to a local cache first). */
  readonly location: string
  /** The `date` partition value from the log (directory names are not part of the protocol). */
  readonly date: string
  /** Every partition value from the log (a table of `tables:` may be partitioned by another column, or not at all). */
  readonly partitionValues: Readonly<Record<string, string | null>>
  readonly bytes: number
  /** From the file's stats; undefined when its writer left them out. */
  readonly rows: number | undefined
  readonly oldest: string | undefined
  readonly newest: string | undefined
}

/** A version of the lake as readers see it: exactly the files that version names, never a directory listing. */
export interface LakeVersion {
  /** -1 when there is no table yet. */
  readonly version: number
  /** When the version was committed (ms since the epoch); 0 without a table. */
  readonly timestamp: number
  readonly files: ReadonlyArray<LakeDataFile>
}

export type LakeRequest = SnapshotRequest

const instantPattern = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i

const isCalendarDate = (ymd: string) => {
  const [y, m, d] = ymd.split("-").map(Number) as [number, number, number]
  const date = new Date(Date.UTC(y, m - 1, d))
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d
}

/**
 * `--version N` / `--as-of TIME` as a snapshot request, or a message saying what is wrong. A time
 * without a zone is UTC (the lake's dates are UTC dates).
 */
export const parseTimeTravel = (flags: { readonly version?: string | undefined; readonly asOf?: string | undefined }): LakeRequest | string => {
  if (flags.version !== undefined && flags.asOf !== undefined) return "--version and --as-of cannot be used together"
  if (flags.version !== undefined) {
    const text = flags.version.trim()
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
      return `--version: expected a table version (a whole number, 0 or more), got "${flags.version}"`
    }
    return { version: Number(text) }
  }
  if (flags.asOf !== undefined) {
    const text = flags.asOf.trim()
    const iso = /^\d{4}-\d{2}-\d{2}$/.test(text) ? `${text}T00:00:00Z` : text.replace(" ", "T")
    const ms = instantPattern.test(text) && isCalendarDate(text.slice(0, 10)) ? Date.parse(/(Z|[+-]\d{2}:?\d{2})$/i.test(iso) ? iso : `${iso}Z`) : NaN
    if (Number.isNaN(ms)) {
      return `--as-of: expected an ISO 8601 time such as 2026-11-25T17:00:00Z (no zone means UTC), got "${flags.asOf}"`
    }
    return { asOf: ms }
  }
  return {}
}

/** The storage a lake path names: a directory (resolved), or an object store configured from the AWS_* environment. */
const storageOf = (lakePath: string) => tableStorageFor(isS3Path(lakePath) ? lakePath : Path.resolve(lakePath))

/**
 * The table's snapshot (latest, `version` or `asOf` ms) as its data files. A damaged log fails with
 * TableError naming the file: readers never fall back to globbing the directory, which also holds
 * compacted-away files and crash leftovers. `storage` replaces the one the path names (explicit S3
 * settings rather than the environment's).
 */
export const readLakeVersion = (
  lakePath: string,
  request: LakeRequest = {},
  storage: Layer.Layer<TableStorage, StorageError> = storageOf(lakePath)
) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const snapshot = yield* loadSnapshot(request)
    if (snapshot.version < 0 && (request.version !== undefined || request.asOf !== undefined)) {
      return yield* new TableError({ reason: "missing", path: storage.root, detail: "there is no table here, so no version to travel to" })
    }
    const files = yield* Effect.forEach([...snapshot.files.values()], (add) =>
      storage.localPath(storagePathOf(add.path, storage.root)).pipe(Effect.flatMap((location) => Effect.try({
        try: (): LakeDataFile => {
          const stats = statsOf(add)
          const created = (bounds: Readonly<Record<string, unknown>> | undefined) =>
            typeof bounds?.["created_at"] === "string" ? bounds["created_at"] : undefined
          return {
            location,
            date: dateOf(add),
            partitionValues: add.partitionValues,
            bytes: add.size,
            rows: stats?.numRecords,
            oldest: created(stats?.minValues),
            newest: created(stats?.maxValues)
          }
        },
        catch: (error) => new TableError({ reason: "corrupt", path: storage.root, detail: `add ${add.path}: ${String(error)}` })
      }))), { concurrency: 8 })
    files.sort((a, b) => (a.location < b.location ? -1 : a.location > b.location ? 1 : 0))
    return { version: snapshot.version, timestamp: snapshot.timestamp, files } satisfies LakeVersion
  }).pipe(
    Effect.provide(storage),
    // A reader's output is its result: the storage layer's start-up lines (which bucket, which keys) stay out of it.
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

/** Whether the lake's current version holds any data file (DuckDB's read_parquet fails on an empty list). */
export const lakeHasFiles = (lakePath: string) => readLakeVersion(lakePath).pipe(Effect.map((lake) => lake.files.length > 0))

const fileList = (files: ReadonlyArray<LakeDataFile>) => `[${files.map((f) => quoteLiteral(f.location)).join(", ")}]`

const isoDate = /^\d{4}-\d{2}-\d{2}$/

/** Every file sits under `date=<its partition value>/`: DuckDB's hive partitioning then gives the log's value. */
const directoriesAgreeWithLog = (files: ReadonlyArray<LakeDataFile>) =>
  files.every((f) => isoDate.test(f.date) && f.location.replaceAll("\\", "/").includes(`/date=${f.date}/`))

const emptyOrdersView = `CREATE VIEW orders AS SELECT NULL::BIGINT AS order_id, NULL::VARCHAR AS customer_name,
  NULL::VARCHAR AS restaurant_name, NULL::VARCHAR AS item, NULL::DECIMAL(10,2) AS amount,
  NULL::VARCHAR AS order_status, NULL::TIMESTAMPTZ AS created_at, NULL::DATE AS date WHERE false`

const emptyChangesView = `CREATE VIEW order_changes AS SELECT NULL::BIGINT AS order_id, NULL::VARCHAR AS op,
  NULL::BIGINT AS commit_lsn, NULL::BIGINT AS change_seq, NULL::TIMESTAMPTZ AS commit_ts, NULL::BIGINT AS xid,
  NULL::VARCHAR AS customer_name, NULL::VARCHAR AS restaurant_name, NULL::VARCHAR AS item, NULL::DECIMAL(10,2) AS amount,
  NULL::VARCHAR AS order_status, NULL::TIMESTAMPTZ AS created_at, NULL::DATE AS date WHERE false`

/** The `orders` view over exactly these files, `date` a DATE column. */
export const ordersViewSql = (files: ReadonlyArray<LakeDataFile>): string => tableViewSql("orders", files, emptyOrdersView)

/** The `order_changes` view (the change history of logical capture) over exactly these files. */
export const changesViewSql = (files: ReadonlyArray<LakeDataFile>): string => tableViewSql("order_changes", files, emptyChangesView)

const tableViewSql = (view: string, files: ReadonlyArray<LakeDataFile>, empty: string): string => {
  if (files.length === 0) return empty
  if (directoriesAgreeWithLog(files)) {
    return `CREATE VIEW ${view} AS SELECT * FROM read_parquet(${fileList(files)}, hive_partitioning = true, hive_types = {'date': DATE})`
  }
  // Some file lies outside date=<value>/ (another writer's layout): take the date from the log.
  const dates = files.map((f) => `(${quoteLiteral(f.location)}, ${isoDate.test(f.date) ? `DATE ${quoteLiteral(f.date)}` : "NULL::DATE"})`)
  return `CREATE VIEW ${view} AS SELECT r.* EXCLUDE (filename), f.date
  FROM read_parquet(${fileList(files)}, hive_partitioning = false, filename = true) r
  JOIN (VALUES ${dates.join(", ")}) f(file, date) ON r.filename = f.file`
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`

/**
 * The view of a table of `tables:` over exactly its version's files: columns by name across files
 * (a file written before an ADD COLUMN lacks the column: NULL there), the partition column from the
 * log. No file yet: an empty view with no columns of the table's.
 */
export const capturedTableViewSql = (view: string, lake: LakeVersion): string => {
  if (lake.files.length === 0) return `CREATE VIEW ${quoteIdent(view)} AS SELECT NULL AS no_rows_yet WHERE false`
  const partitionColumns = Object.keys(lake.files[0]!.partitionValues)
  const read = `read_parquet(${fileList(lake.files)}, union_by_name = true, hive_partitioning = false, filename = true)`
  if (partitionColumns.length === 0) return `CREATE VIEW ${quoteIdent(view)} AS SELECT * EXCLUDE (filename) FROM ${read}`
  const column = partitionColumns[0]!
  const values = lake.files.map((f) => {
    const value = f.partitionValues[column]
    return `(${quoteLiteral(f.location)}, ${value === null || value === undefined || !isoDate.test(value) ? "NULL::DATE" : `DATE ${quoteLiteral(value)}`})`
  })
  return `CREATE VIEW ${quoteIdent(view)} AS SELECT r.* EXCLUDE (filename), f.${quoteIdent(column)}
  FROM ${read} r JOIN (VALUES ${values.join(", ")}) f(file, ${quoteIdent(column)}) ON r.filename = f.file`
}

/** A table of `tables:` as DuckDB views: its name, and `<name>_changes` for its history. */
export interface CapturedTableViews {
  readonly name: string
  readonly lake: LakeVersion
  readonly changes: LakeVersion | undefined
}

/** An in-memory DuckDB with the view `orders` over the given version's files (and `order_changes` over the history's). */
export const openLakeVersion = (lake: LakeVersion, changes?: LakeVersion, tables: ReadonlyArray<CapturedTableViews> = []) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const instance = await DuckDBInstance.create(":memory:")
        const connection = await instance.connect()
        try {
          await connection.run(ordersViewSql(lake.files))
          await connection.run(changesViewSql(changes?.files ?? []))
          for (const table of tables) {
            await connection.run(capturedTableViewSql(table.name, table.lake))
            await connection.run(capturedTableViewSql(`${table.name}_changes`, table.changes ?? { version: -1, timestamp: 0, files: [] }))
          }
          await connection.run("SET TimeZone = 'UTC'")
        } catch (error) {
          connection.closeSync()
          instance.closeSync()
          throw error
        }
        return { instance, connection }
      },
      catch: (cause) => new LakeQueryError({ sql: "(open lake)", cause })
    }),
    ({ connection, instance }) =>
      Effect.sync(() => {
        connection.closeSync()
        instance.closeSync()
      })
  ).pipe(Effect.map(({ connection }) => connection))

/**
 * An in-memory DuckDB with the view `orders` over the table's snapshot (the latest version, or
 * `version`, or the one current at `asOf` ms): `read_parquet` of its exact files, `date` a DATE
 * column. No table, or a table without files, gives an empty view with the lake's columns.
 */
export const openLake = (
  lakePath: string,
  options: LakeRequest = {},
  storage?: Layer.Layer<TableStorage, StorageError>,
  tables: ReadonlyArray<{ readonly name: string; readonly path: string; readonly changesPath: string }> = []
) =>
  Effect.gen(function*() {
    const lake = yield* readLakeVersion(lakePath, options, storage)
    // The history beside it (logical capture), as of the same time; none yet reads as empty. A
    // version number is the orders table's own: the history is then read at its latest.
    const changesPath = changesTableBeside(lakePath)
    const changes = storage !== undefined ? undefined : yield* readLakeVersion(changesPath, options.asOf === undefined ? {} : { asOf: options.asOf }).pipe(
      Effect.catchIf((error) => error._tag === "TableError" && error.reason === "missing", () => Effect.succeed(undefined))
    )
    // Tables of `tables:` at their latest versions (a version number is the orders table's), or as of the same time.
    const travel = options.asOf === undefined ? {} : { asOf: options.asOf }
    const missingIsEmpty = <A>(effect: Effect.Effect<A, StorageError | TableError>) =>
      effect.pipe(Effect.catchIf((error) => error._tag === "TableError" && error.reason === "missing", () => Effect.succeed(undefined)))
    const views = yield* Effect.forEach(tables, (table) =>
      Effect.gen(function*() {
        const main = yield* missingIsEmpty(readLakeVersion(table.path, travel))
        const history = yield* missingIsEmpty(readLakeVersion(table.changesPath, travel))
        return { name: table.name, lake: main ?? { version: -1, timestamp: 0, files: [] }, changes: history } satisfies CapturedTableViews
      }))
    return yield* openLakeVersion(lake, changes, views)
  })

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

/**
 * Delivery times from the change history (logical capture): per restaurant and over all, orders
 * delivered, and the median and 90th percentile of minutes from the insert's commit (PLACED) to the
 * commit that first made the order DELIVERED. Orders captured from the initial snapshot have no
 * insert in the history and are left out.
 */
export const deliveryTimesSql = `WITH life AS (
  SELECT order_id,
         arg_max(restaurant_name, commit_lsn) AS restaurant_name,
         min(commit_ts) FILTER (WHERE op = 'insert') AS placed,
         min(commit_ts) FILTER (WHERE order_status = 'DELIVERED' AND op IN ('insert', 'update')) AS delivered
  FROM order_changes GROUP BY order_id)
SELECT coalesce(restaurant_name, '(all)') AS restaurant,
       count(*) AS delivered,
       round(median(epoch(delivered - placed)) / 60, 1) AS median_minutes,
       round(quantile_cont(epoch(delivered - placed), 0.9) / 60, 1) AS p90_minutes
FROM life WHERE placed IS NOT NULL AND delivered IS NOT NULL
GROUP BY ROLLUP (restaurant_name)
ORDER BY restaurant_name NULLS LAST`

/** A plain-text table for terminals. */
export const formatTable = ({ columns, rows }: QueryResult): string => {
  const cells = [columns, ...rows.map((r) => r.map((v) => v ?? "NULL"))]
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)))
  const line = (r: ReadonlyArray<string>) => r.map((v, i) => v.padEnd(widths[i]!)).join(" | ").trimEnd()
  return [line(columns), widths.map((w) => "-".repeat(w)).join("-+-"), ...rows.map((r) => line(r.map((v) => v ?? "NULL")))]
    .join("\n") + `\n(${rows.length} row${rows.length === 1 ? "" : "s"})\n`
}

/**
 * Per date partition of the version: files, rows, bytes (the log's `size`), oldest and newest order;
 * the total in the row whose date is NULL. Rows and times come from the files' stats (times to the
 * millisecond, as stats hold them); a file without stats is read instead.
 */
export const lakeStatsSql = (lake: LakeVersion): string => {
  if (lake.files.length === 0) {
    return `SELECT NULL::VARCHAR AS date, 0::BIGINT AS files, 0::HUGEINT AS rows, 0::HUGEINT AS bytes,
      NULL::VARCHAR AS oldest_order, NULL::VARCHAR AS newest_order`
  }
  const logged = lake.files.map((f) =>
    `(${quoteLiteral(f.location)}, ${quoteLiteral(f.date)}, ${f.bytes}::BIGINT, ${sqlOrNull(f.rows, "BIGINT")}, ${
      sqlOrNull(f.oldest, "TIMESTAMPTZ")
    }, ${sqlOrNull(f.newest, "TIMESTAMPTZ")})`
  )
  const unstated = lake.files.filter((f) => f.rows === undefined)
  const scanned = unstated.length === 0
    ? `SELECT NULL::VARCHAR AS file, NULL::BIGINT AS n, NULL::TIMESTAMPTZ AS oldest, NULL::TIMESTAMPTZ AS newest WHERE false`
    : `SELECT filename AS file, count(*) AS n, min(created_at) AS oldest, max(created_at) AS newest
       FROM read_parquet(${fileList(unstated)}, hive_partitioning = false, filename = true) GROUP BY filename`
  return `
WITH logged(file, date, bytes, n, oldest, newest) AS (VALUES ${logged.join(",\n  ")}),
scanned AS (${scanned}),
files AS (
  SELECT l.date, l.bytes, coalesce(l.n, s.n) AS n, coalesce(l.oldest, s.oldest) AS oldest, coalesce(l.newest, s.newest) AS newest
  FROM logged l LEFT JOIN scanned s ON s.file = l.file
)
SELECT CASE WHEN grouping(date) = 1 THEN NULL ELSE date END AS date, count(*) AS files, sum(n) AS rows, sum(bytes) AS bytes,
       min(oldest)::VARCHAR AS oldest_order, max(newest)::VARCHAR AS newest_order
FROM files
GROUP BY ROLLUP (date)
ORDER BY grouping(date), date`
}
