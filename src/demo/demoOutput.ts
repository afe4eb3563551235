import * as Path from "node:path"
import { formatTable } from "../analytics/lakeQuery.ts"
import type { DemoLayout } from "./demoLayout.ts"
import { demoNames } from "./demoLayout.ts"
import type { PipelineResult, Progress } from "./demoPipeline.ts"
import type { EmbeddedPostgres } from "./embeddedPostgres.ts"
import { type LakeSummary, summaryQueries } from "./summary.ts"

/** The text a newcomer reads. Paths are shown relative to where they ran the demo when inside it. */
const show = (path: string) => {
  const relative = Path.relative(process.cwd(), path)
  return relative !== "" && !relative.startsWith("..") && !Path.isAbsolute(relative) ? relative : path
}

const shellWord = (text: string) => (/^[\w./=:-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`)

export const startingText = (seconds: number, rate: number) =>
  `food-orders-pipeline demo: PostgreSQL -> producer -> Kafka topic -> consumer -> Parquet lake, for ${seconds} s at ~${rate} orders/s\n` +
  `Starting an embedded PostgreSQL (PGlite: PostgreSQL compiled to WebAssembly, inside this process)...`

export const runningText = (postgres: EmbeddedPostgres, layout: DemoLayout, batchInterval: number) =>
  [
    "",
    "Running, all in this one Node process:",
    `  PostgreSQL  embedded PGlite (PostgreSQL ${postgres.serverVersion}) on ${postgres.host}:${postgres.port}, tables "${demoNames.table}"`,
    `              and "${demoNames.restaurants}", read over the wire by the live producer code (the same capture queries)`,
    `  Kafka       in-process (memory) topics "${demoNames.topic}" and "${demoNames.restaurantsTopic}"`,
    `              — not a real broker; \`npm run stack:up\` for the real one`,
    `  producer    captures new orders and new restaurants every ${batchInterval} s and publishes them as JSON, each to its topic`,
    `  consumer    reads the topics and writes Delta tables under ${show(Path.dirname(layout.lake))}/ (orders, restaurants)`,
    ""
  ].join("\n")

export const progressText = (progress: Progress, elapsedSeconds: number) =>
  `  ${elapsedSeconds.toFixed(1).padStart(5)} s   inserted ${String(progress.inserted).padStart(6)}   ` +
  `captured ${String(progress.captured).padStart(6)}   written to lake ${String(progress.written).padStart(6)}`

export const drainingText = "Generation stopped; letting the producer and consumer catch up..."

export const summaryText = (summary: LakeSummary) =>
  [
    "",
    "What DuckDB reads from the lake:",
    "",
    "Orders per date (UTC)",
    formatTable(summary.perDate),
    "Top 5 restaurants by revenue",
    formatTable(summary.topRestaurants),
    "Orders by status",
    formatTable(summary.statuses),
    "Restaurants per city (the second table; new ones opened while the demo ran have no rating yet)",
    formatTable(summary.restaurants.perCity)
  ].join("\n")

/** Whether every order generated, and every restaurant, is in the lake exactly once. */
export const isComplete = (result: PipelineResult, summary: LakeSummary) =>
  result.drained && result.inserted === result.inPostgres && summary.rows === result.inserted &&
  summary.distinctIds === summary.rows && restaurantsComplete(result, summary)

const restaurantsComplete = (result: PipelineResult, summary: LakeSummary) =>
  summary.restaurants.rows === result.restaurants.inPostgres && summary.restaurants.distinctIds === summary.restaurants.rows

export const checkText = (result: PipelineResult, summary: LakeSummary) => {
  const counts = `${result.inserted} orders generated (${result.inPostgres} in PostgreSQL), ${result.captured} captured, ` +
    `${summary.rows} rows in the lake (${summary.distinctIds} distinct order_id)`
  const restaurants = `${result.restaurants.inPostgres} restaurants in PostgreSQL, ${result.restaurants.captured} captured, ` +
    `${summary.restaurants.rows} rows in the lake (${summary.restaurants.distinctIds} distinct restaurant_id)`
  const lines = isComplete(result, summary)
    ? [`Check: OK — orders generated = rows in the lake: ${counts}.`, `       and the same for restaurants: ${restaurants}.`]
    : [
      `Check: FAILED — the lake does not hold every row exactly once: ${counts}; ${restaurants}.`,
      ...(result.drained ? [] : ["  The producer and consumer did not catch up in time (see any warnings above)."])
    ]
  if (result.deadLettered > 0) lines.push(`  ${result.deadLettered} messages went to the dead-letter topic.`)
  return lines.join("\n")
}

/**
 * The demo captures by polling for new rows (PGlite cannot serve logical replication); what the
 * other mode adds, in two lines.
 */
export const captureModeText = [
  "This demo captured new rows only (capture.mode: poll; restaurants by their key, as any table of `tables:` with a sequence key).",
  "capture.mode: logical also carries updates, deletes and ADD COLUMN, through logical replication: it needs a real PostgreSQL",
  "with wal_level=logical, which `npm run stack:up` sets up (CAPTURE_MODE=logical)."
]

export const whereText = (layout: DemoLayout, summary: LakeSummary) => {
  const lake = show(layout.lake)
  return [
    "",
    "Where the files are:",
    `  lake        ${lake}/  a Delta Lake table: version ${summary.version} names ${summary.files} Parquet files`,
    `              under date=YYYY-MM-DD/ (files it does not name are compacted away or leftovers: read the log, not a glob)`,
    `  restaurants ${show(layout.restaurantsLake)}/  the second table's Delta table (version ${summary.restaurants.version}), its history beside it`,
    `  cursor      ${show(layout.cursor)}  (the producer's position; the restaurants' beside it)`,
    `  positions   ${show(Path.join(layout.lake, "_delta_log"))}/  (the consumer's Kafka offsets, as txn actions committed with the files)`,
    "",
    "Query the lake:",
    `  DATALAKE_PATH=${shellWord(lake)} npm run query -- ${shellWord(summaryQueries.statuses.replace(/\s+/g, " "))}`,
    `  DATALAKE_PATH=${shellWord(lake)} TABLES=${demoNames.restaurants} npm run query -- ${shellWord("SELECT name, city, rating FROM restaurants ORDER BY restaurant_id DESC LIMIT 5")}`,
    `  or with DuckDB's delta extension: SELECT * FROM delta_scan('${Path.resolve(layout.lake)}') LIMIT 5`,
    `  or Spark: spark.read.format("delta").load("${Path.resolve(layout.lake)}")`,
    "",
    "Next: `npm run stack:up` for a real PostgreSQL and Kafka broker, then `npm run producer` and `npm run consumer`.",
    ...captureModeText,
    ""
  ].join("\n")
}

/** One machine-readable line for scripts and the CI test. */
export const resultLine = (layout: DemoLayout, result: PipelineResult, summary: LakeSummary) =>
  `DEMO_RESULT ${JSON.stringify({
    ok: isComplete(result, summary),
    generated: result.inserted,
    in_postgres: result.inPostgres,
    captured: result.captured,
    lake_rows: summary.rows,
    restaurants_in_postgres: result.restaurants.inPostgres,
    restaurants_lake_rows: summary.restaurants.rows,
    files: summary.files,
    table_version: summary.version,
    lake: layout.lake
  })}`
