import { Data } from "effect"
import { type Column, type ColumnType, type ScalarType, type TableSchema, typeName } from "../domain/columns.ts"
import type { Metadata } from "./actions.ts"

/**
 * A captured table's Delta schema (issue 19): one field per source column, in the source's order,
 * typed per `typeName`, every field nullable (see `deltaField`), and each field's metadata saying
 * where it came from (`pg_type`, `pg_type_oid`, `pg_nullable`) so a consumer that restarts learns the
 * table's columns from the table itself (`tableSchemaOfDelta`).
 */

/**
 * How the table is partitioned: not at all, or by the UTC date of a date or timestamp column, as a
 * derived `date` column (`<source>_date` when the source table has a column named `date`). The derived
 * column is in the Delta schema and `partitionColumns`, never in the Parquet files.
 */
export type PartitionSpec =
  | { readonly kind: "none" }
  | { readonly kind: "date"; readonly source: string; readonly column: string }

export const noPartition: PartitionSpec = { kind: "none" }

/** Configuration keys of the table's metaData: what the schema alone cannot say. */
export const keyConfiguration = "food_orders.key"
export const partitionSourceConfiguration = "food_orders.partition_source"
/**
 * The change key of the schema marker that gave the table its newest columns (an ADD COLUMN): a
 * marker at or below it describes the table as it was before, and is no drop (tableSplit.ts).
 */
export const schemaSinceConfiguration = "food_orders.schema_since"

/** A schema we cannot write or follow: the columns it names and why. */
export class RowsSchemaError extends Data.TaggedError("RowsSchemaError")<{
  readonly reason: "dropped" | "retyped" | "reordered" | "partition" | "unreadable" | "names"
  readonly columns: ReadonlyArray<string>
  readonly detail: string
}> {
  override get message() {
    return `${this.detail}${this.columns.length === 0 ? "" : ` (${this.columns.join(", ")})`}`
  }
}

/** What Delta refuses in a column name without column mapping (Spark: DELTA_INVALID_CHARACTERS_IN_COLUMN_NAMES). */
const invalidNameCharacters = /[ ,;{}()\n\t=]/

/**
 * Why `schema`'s column names cannot be a Delta table's (undefined when they can): Delta (without
 * column mapping) refuses spaces and ` ,;{}()=` and tabs or newlines in names, and compares names
 * ignoring case, where PostgreSQL's quoted identifiers allow both.
 */
export const deltaNamesProblem = (schema: TableSchema): RowsSchemaError | undefined => {
  const invalid = schema.columns.filter((c) => invalidNameCharacters.test(c.name)).map((c) => c.name)
  if (invalid.length > 0) {
    return new RowsSchemaError({ reason: "names", columns: invalid, detail: "column names Delta refuses without column mapping (space or one of ,;{}()= tab newline)" })
  }
  const seen = new Map<string, string>()
  const clashes: Array<string> = []
  for (const c of schema.columns) {
    const other = seen.get(c.name.toLowerCase())
    if (other !== undefined) clashes.push(`${other} / ${c.name}`)
    else seen.set(c.name.toLowerCase(), c.name)
  }
  if (clashes.length > 0) return new RowsSchemaError({ reason: "names", columns: clashes, detail: "column names equal but for case, which Delta does not tell apart" })
  return undefined
}

/**
 * The date partition of `schema` by `source` (a date or timestamp column), naming the derived column
 * `date` unless the table already has a column of that name.
 */
export const datePartition = (schema: TableSchema, source: string): PartitionSpec | RowsSchemaError => {
  const column = schema.columns.find((c) => c.name === source)
  if (column === undefined || (column.type.kind !== "date" && column.type.kind !== "timestamp")) {
    return new RowsSchemaError({ reason: "partition", columns: [source], detail: "the partition source must be a date or timestamp column" })
  }
  const taken = new Set(schema.columns.map((c) => c.name.toLowerCase()))
  return { kind: "date", source, column: taken.has("date") ? `${source}_date` : "date" }
}

export type DeltaType = string | { readonly type: "array"; readonly elementType: string; readonly containsNull: true }

export const deltaType = (type: ColumnType): DeltaType =>
  type.kind === "array" ? { type: "array", elementType: typeName(type.element), containsNull: true } : typeName(type)

export interface DeltaField {
  readonly name: string
  readonly type: DeltaType
  readonly nullable: boolean
  readonly metadata: Readonly<Record<string, unknown>>
}

/**
 * Every field nullable, whatever PostgreSQL says: a NOT NULL column in Delta is an invariant Spark's
 * writers enforce and that PostgreSQL may drop at any time (ALTER COLUMN DROP NOT NULL), which Delta
 * without column mapping cannot follow; the source's nullability stays in the field's metadata.
 */
export const deltaField = (column: Column): DeltaField => ({
  name: column.name,
  type: deltaType(column.type),
  nullable: true,
  metadata: { pg_type: column.pgType, pg_type_oid: column.typeOid, pg_nullable: column.nullable }
})

const partitionField = (name: string): DeltaField => ({ name, type: "date", nullable: true, metadata: {} })

/** The table's Delta schema: the source's columns, then the derived partition column. */
export const deltaSchema = (schema: TableSchema, partition: PartitionSpec) => ({
  type: "struct" as const,
  fields: [...schema.columns.map(deltaField), ...(partition.kind === "date" ? [partitionField(partition.column)] : [])]
})

export const partitionColumnsOf = (partition: PartitionSpec): Array<string> => (partition.kind === "date" ? [partition.column] : [])

/** What the metaData's configuration must say besides what the table code passes in. */
export const schemaConfiguration = (schema: TableSchema, partition: PartitionSpec): Record<string, string> => ({
  [keyConfiguration]: schema.key.join(","),
  ...(partition.kind === "date" ? { [partitionSourceConfiguration]: partition.source } : {})
})

const scalarTypes: Record<string, ScalarType> = {
  short: { kind: "short" },
  integer: { kind: "integer" },
  long: { kind: "long" },
  float: { kind: "float" },
  double: { kind: "double" },
  boolean: { kind: "boolean" },
  string: { kind: "string" },
  date: { kind: "date" },
  timestamp: { kind: "timestamp" },
  binary: { kind: "binary" }
}

const scalarOf = (name: unknown): ScalarType | undefined => {
  if (typeof name !== "string") return undefined
  const decimal = /^decimal\((\d+),\s*(\d+)\)$/.exec(name)
  if (decimal !== null) return { kind: "decimal", precision: Number(decimal[1]), scale: Number(decimal[2]) }
  return Object.hasOwn(scalarTypes, name) ? scalarTypes[name] : undefined
}

const columnTypeOf = (type: unknown): ColumnType | undefined => {
  if (typeof type === "object" && type !== null && (type as { type?: unknown }).type === "array") {
    const element = scalarOf((type as { elementType?: unknown }).elementType)
    return element === undefined ? undefined : { kind: "array", element }
  }
  return scalarOf(type)
}

/**
 * The columns (and partition) of a table from its metaData: what `deltaSchema` and
 * `schemaConfiguration` wrote, read back. Fields without our metadata (a table another engine
 * created) get the lake type's name as pgType, OID 0 and nullable true.
 */
export const tableSchemaOfDelta = (
  schemaString: string,
  partitionColumns: ReadonlyArray<string>,
  configuration: Readonly<Record<string, string>>
): { readonly schema: TableSchema; readonly partition: PartitionSpec } | RowsSchemaError => {
  let fields: Array<{ name?: unknown; type?: unknown; metadata?: Record<string, unknown> }>
  try {
    const parsed = JSON.parse(schemaString) as { fields?: unknown }
    if (!Array.isArray(parsed.fields)) throw new Error("no fields")
    fields = parsed.fields
  } catch {
    return new RowsSchemaError({ reason: "unreadable", columns: [], detail: "schemaString is not a Delta struct" })
  }
  if (partitionColumns.length > 1) {
    return new RowsSchemaError({ reason: "partition", columns: [...partitionColumns], detail: "partitioned by more than one column" })
  }
  const partitionName = partitionColumns[0]
  const columns: Array<Column> = []
  const unknown: Array<string> = []
  for (const field of fields) {
    const name = String(field.name)
    if (name === partitionName) continue
    const type = columnTypeOf(field.type)
    if (type === undefined) {
      unknown.push(name)
      continue
    }
    const metadata = field.metadata ?? {}
    columns.push({
      name,
      pgType: typeof metadata["pg_type"] === "string" ? metadata["pg_type"] : typeName(type),
      typeOid: typeof metadata["pg_type_oid"] === "number" ? metadata["pg_type_oid"] : 0,
      type,
      nullable: metadata["pg_nullable"] !== false
    })
  }
  if (unknown.length > 0) return new RowsSchemaError({ reason: "unreadable", columns: unknown, detail: "columns of types we do not write" })
  const keyText = configuration[keyConfiguration]
  const key = keyText === undefined || keyText === "" ? [] : keyText.split(",")
  const missingKey = key.filter((k) => !columns.some((c) => c.name === k))
  if (missingKey.length > 0) return new RowsSchemaError({ reason: "unreadable", columns: missingKey, detail: "key columns not in the schema" })
  const schema: TableSchema = { columns, key }
  if (partitionName === undefined) return { schema, partition: noPartition }
  const source = configuration[partitionSourceConfiguration]
  const sourceColumn = columns.find((c) => c.name === source)
  if (source === undefined || sourceColumn === undefined || (sourceColumn.type.kind !== "date" && sourceColumn.type.kind !== "timestamp")) {
    return new RowsSchemaError({ reason: "partition", columns: [partitionName], detail: `partition column without a date or timestamp source (${partitionSourceConfiguration})` })
  }
  return { schema, partition: { kind: "date", source, column: partitionName } }
}

/**
 * How `next` (the source's columns now) extends `current` (the table's): columns added at the end,
 * which Delta follows by a new metaData. A column dropped, renamed, moved or of another lake type
 * cannot be followed without column mapping: a problem naming them. A change PostgreSQL sees but the
 * lake does not (varchar(10) to varchar(20), both string; NOT NULL dropped) is no problem.
 */
export const schemaChange = (current: TableSchema, next: TableSchema): { readonly added: ReadonlyArray<Column> } | RowsSchemaError => {
  const nextByName = new Map(next.columns.map((c, i) => [c.name, { column: c, index: i }]))
  const dropped = current.columns.filter((c) => !nextByName.has(c.name)).map((c) => c.name)
  if (dropped.length > 0) {
    return new RowsSchemaError({ reason: "dropped", columns: dropped, detail: "columns dropped or renamed at the source: Delta without column mapping cannot follow" })
  }
  const retyped = current.columns.filter((c) => typeName(nextByName.get(c.name)!.column.type) !== typeName(c.type))
  if (retyped.length > 0) {
    return new RowsSchemaError({
      reason: "retyped",
      columns: retyped.map((c) => `${c.name}: ${typeName(c.type)} -> ${typeName(nextByName.get(c.name)!.column.type)}`),
      detail: "columns changed type at the source: Delta without column mapping cannot follow"
    })
  }
  const moved = current.columns.filter((c, i) => nextByName.get(c.name)!.index !== i).map((c) => c.name)
  if (moved.length > 0) {
    return new RowsSchemaError({ reason: "reordered", columns: moved, detail: "columns moved at the source" })
  }
  return { added: next.columns.slice(current.columns.length) }
}

/**
 * The metaData after the source table gained columns (`schemaChange` said so): the same table id and
 * partitioning, the fields refreshed from `next` (pg_type may have changed within a lake type) and the
 * new ones appended at the end of the schema, after the partition column, as Spark's own
 * `ALTER TABLE ADD COLUMNS` does.
 */
export const evolvedMetadata = (metadata: Metadata, next: TableSchema): Metadata => {
  const parsed = JSON.parse(metadata.schemaString) as { type: string; fields: Array<DeltaField> }
  const byName = new Map(next.columns.map((c) => [c.name, c]))
  const kept = parsed.fields.map((field) => {
    const column = byName.get(field.name)
    return column === undefined ? field : deltaField(column)
  })
  const present = new Set(parsed.fields.map((f) => f.name))
  const added = next.columns.filter((c) => !present.has(c.name)).map(deltaField)
  return {
    ...metadata,
    schemaString: JSON.stringify({ type: "struct", fields: [...kept, ...added] }),
    configuration: { ...metadata.configuration, [keyConfiguration]: next.key.join(",") }
  }
}
