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
    `  PostgreSQL  embedded PGlite (PostgreSQL ${postgres.serverVersion}) on ${postgres.host}:${postgres.port}, table "${demoNames.table}"`,
    `              read over the wire by the live producer code (@effect/sql-pg, the same capture query)`,
    `  Kafka       in-process (memory) topic "${demoNames.topic}" — not a real broker; \`npm run stack:up\` for the real one`,
    `  producer    captures new orders every ${batchInterval} s and publishes them as JSON to the topic`,
    `  consumer    reads the topic and writes Parquet files under ${show(layout.lake)}`,
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
    formatTable(summary.statuses)
  ].join("\n")

/** Whether every order generated is in the lake exactly once. */
export const isComplete = (result: PipelineResult, summary: LakeSummary) =>
  result.drained && result.inserted === result.inPostgres && summary.rows === result.inserted &&
  summary.distinctIds === summary.rows

export const checkText = (result: PipelineResult, summary: LakeSummary) => {
  const counts = `${result.inserted} orders generated (${result.inPostgres} in PostgreSQL), ${result.captured} captured, ` +
    `${summary.rows} rows in the lake (${summary.distinctIds} distinct order_id)`
  const lines = isComplete(result, summary)
    ? [`Check: OK — orders generated = rows in the lake: ${counts}.`]
    : [
      `Check: FAILED — orders generated ≠ rows in the lake: ${counts}.`,
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
  "This demo captured new orders only (capture.mode: poll). capture.mode: logical also carries updates and deletes,",
  "through logical replication: it needs a real PostgreSQL with wal_level=logical, which `npm run stack:up` sets up (CAPTURE_MODE=logical)."
]

export const whereText = (layout: DemoLayout, summary: LakeSummary) => {
  const lake = show(layout.lake)
  return [
    "",
    "Where the files are:",
    `  lake        ${lake}/  a Delta Lake table: version ${summary.version} names ${summary.files} Parquet files`,
    `              under date=YYYY-MM-DD/ (files it does not name are compacted away or leftovers: read the log, not a glob)`,
    `  cursor      ${show(layout.cursor)}  (the producer's position)`,
    `  positions   ${show(Path.join(layout.lake, "_delta_log"))}/  (the consumer's Kafka offsets, as txn actions committed with the files)`,
    "",
    "Query the lake:",
    `  DATALAKE_PATH=${shellWord(lake)} npm run query -- ${shellWord(summaryQueries.statuses.replace(/\s+/g, " "))}`,
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
    files: summary.files,
    table_version: summary.version,
    lake: layout.lake
  })}`
