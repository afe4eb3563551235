import { Schema } from "effect"
import * as Path from "node:path"
import { TopicName } from "./Identifiers.ts"
import type { PipelineConfig } from "./PipelineConfig.ts"

/**
 * A table named in config: `name` or `schema.name`, plain identifiers (letters, digits, _), so
 * that it can be quoted into SQL without escaping.
 */
export const TableRefText = Schema.String.pipe(
  Schema.pattern(/^(?:[A-Za-z0-9_]{1,63}\.)?[A-Za-z0-9_]{1,63}$/, {
    message: (issue) => `Expected a table as name or schema.name (letters, digits, _; at most 63 each), got ${JSON.stringify(issue.actual)}`
  })
)

export const ColumnName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_]{1,63}$/, {
    message: (issue) => `Expected a column name (letters, digits, _; at most 63), got ${JSON.stringify(issue.actual)}`
  })
)

/** One entry of `tables:`: a table captured beside the orders table, into its own topic and Delta table. */
export const TableEntry = Schema.Struct({
  name: TableRefText,
  /** The row key (default: the primary key): changes replace the row of their key. */
  key: Schema.optional(Schema.Array(ColumnName).pipe(Schema.minItems(1))),
  /** A timestamp or date column: the Delta table is partitioned by its UTC date. Default: unpartitioned. */
  partition_by: Schema.optional(ColumnName),
  topic: Schema.optional(TopicName),
  /** The Delta table (a directory or s3:// prefix). Default: beside datalake.path, named for the table. */
  path: Schema.optional(Schema.String.pipe(Schema.minLength(1)))
})
export type TableEntry = typeof TableEntry.Type

export interface TableRef {
  readonly schema: string
  readonly name: string
}

/** A captured table beyond the orders table, with every name it goes by resolved. */
export interface CapturedTableConfig {
  readonly ref: TableRef
  /** `schema.name` as written in config (logs, the `source` header). */
  readonly display: string
  /** The name the lake gives it: the table's name without the roll prefix of postgres.table (`restaurants`). */
  readonly lakeName: string
  readonly key: ReadonlyArray<string> | undefined
  readonly partitionBy: string | undefined
  readonly topic: TopicName
  readonly path: string
  /** `<path>_changes`: every change of the table's rows. */
  readonly changesPath: string
  readonly consumerGroup: string
}

export const tableRefOf = (text: string): TableRef => {
  const dot = text.indexOf(".")
  return dot < 0 ? { schema: "public", name: text } : { schema: text.slice(0, dot), name: text.slice(dot + 1) }
}

export const quoteTableRef = (ref: TableRef) => `"${ref.schema}"."${ref.name}"`

/**
 * The roll prefix the reference design puts before every name: `2025em1100506_` of
 * `2025em1100506_orders`. Empty when postgres.table does not end in `orders`.
 */
const rollPrefixOf = (ordersTable: string) => (ordersTable.endsWith("orders") ? ordersTable.slice(0, -"orders".length) : "")

/**
 * The names of a table entry, by the reference design's pattern where it has one: the topic is the
 * orders topic with `orders` replaced by the table's lake name (`<roll>_food_restaurants_raw`), the
 * Delta table sits beside the orders table (`.../output/restaurants`), its history beside it
 * (`.../output/restaurants_changes`), and its consumer group is named for its topic.
 */
export const capturedTableOf = (config: PipelineConfig, entry: TableEntry): CapturedTableConfig => {
  const ref = tableRefOf(entry.name)
  const prefix = rollPrefixOf(config.postgres.table)
  const lakeName = prefix !== "" && ref.name.startsWith(prefix) && ref.name.length > prefix.length ? ref.name.slice(prefix.length) : ref.name
  const ordersTopic = config.kafka.topic
  const at = ordersTopic.lastIndexOf("orders")
  const topic = entry.topic ?? TopicName.make(at >= 0 ? `${ordersTopic.slice(0, at)}${lakeName}${ordersTopic.slice(at + "orders".length)}` : `${ref.name}_raw`)
  const ordersPath = config.datalake.path.replace(/\/+$/, "")
  const beside = `${ordersPath.slice(0, ordersPath.lastIndexOf("/") + 1)}${lakeName}`
  const path = entry.path === undefined ? beside : /^s3a?:\/\//i.test(entry.path) ? entry.path.replace(/\/+$/, "") : Path.resolve(entry.path)
  return {
    ref,
    display: entry.name.includes(".") ? entry.name : `public.${entry.name}`,
    lakeName,
    key: entry.key,
    partitionBy: entry.partition_by,
    topic,
    path,
    changesPath: `${path}_changes`,
    consumerGroup: `${topic}_lake_writer`
  }
}

/** The tables captured beside the orders table (postgres.table), in config order. */
export const capturedTablesOf = (config: PipelineConfig): ReadonlyArray<CapturedTableConfig> =>
  config.tables.filter((entry) => !isOrdersEntry(config, entry)).map((entry) => capturedTableOf(config, entry))

/** An entry naming the orders table itself, without options: it stands for the orders contract. */
export const isOrdersEntry = (config: PipelineConfig, entry: TableEntry) => {
  const ref = tableRefOf(entry.name)
  return ref.schema === "public" && ref.name === config.postgres.table
}

/** The captured table a command line names: `schema.name`, `name` (in schema public), or its lake name. */
export const findCapturedTable = (tables: ReadonlyArray<CapturedTableConfig>, name: string) =>
  tables.find((table) => table.display === name || table.display === `public.${name}` || table.lakeName === name)
