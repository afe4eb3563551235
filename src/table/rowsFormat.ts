import type { Row, TableSchema } from "../domain/columns.ts"
import { columnIndex } from "../domain/columns.ts"
import type { Metadata } from "./actions.ts"
import { ordersProtocol } from "./ordersTable.ts"
import { rowsKeys } from "./rowsKeys.ts"
import { readRowsFile, rowsFileWriter } from "./rowsParquet.ts"
import { deltaSchema, type PartitionSpec, partitionColumnsOf, schemaConfiguration } from "./rowsSchema.ts"
import { RowsStats, statsDate } from "./rowsStats.ts"
import type { TableFormat } from "./tableFormat.ts"

const dayMicros = 86_400_000_000n

/**
 * The partition value of a row (`add.partitionValues`): the UTC date of the source column, or null
 * when the source is null (Spark's directory `<column>=__HIVE_DEFAULT_PARTITION__`). Undefined for an
 * unpartitioned table. A date outside years 1..9999 cannot be spelled for every engine: an error.
 */
export const partitionValueOf = (schema: TableSchema, partition: PartitionSpec): ((row: Row) => string | null) | undefined => {
  if (partition.kind === "none") return undefined
  const index = columnIndex(schema, partition.source)
  const timestamp = schema.columns[index]?.type.kind === "timestamp"
  return (row) => {
    const value = row[index] ?? null
    if (value === null) return null
    const days = timestamp ? floorDiv(value as bigint, dayMicros) : (value as number)
    const text = statsDate(Number(days))
    if (text === undefined) throw new Error(`${partition.source}: ${String(value)} is outside the dates a partition value can hold`)
    return text
  }
}

const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b))

const fieldText = (field: { readonly name: string; readonly type: unknown }) =>
  `${field.name}:${typeof field.type === "string" ? field.type : JSON.stringify(field.type)}`

/**
 * Our writes assume the table's columns are ours: the same data columns by name and type in order
 * (the partition column may stand anywhere: Spark's ADD COLUMNS appends after it) and the same
 * partition column. Nullability and field metadata may differ.
 */
const schemaDifferenceOf = (schema: TableSchema, partition: PartitionSpec) => {
  const ours = deltaSchema(schema, partition).fields
  const partitionColumns = partitionColumnsOf(partition)
  const want = ours.filter((f) => !partitionColumns.includes(f.name)).map(fieldText).join(", ")
  const wantPartition = ours.filter((f) => partitionColumns.includes(f.name)).map(fieldText).join(", ")
  return (schemaString: string, tablePartitionColumns: ReadonlyArray<string>): string | undefined => {
    let fields: Array<{ name: string; type: unknown }>
    try {
      fields = (JSON.parse(schemaString) as { fields?: Array<{ name: string; type: unknown }> }).fields ?? []
    } catch {
      return "schemaString is not JSON"
    }
    if (tablePartitionColumns.join(",") !== partitionColumns.join(",")) {
      return `partitioned by [${tablePartitionColumns.join(", ")}], expected [${partitionColumns.join(", ")}]`
    }
    const have = fields.filter((f) => !partitionColumns.includes(f.name)).map(fieldText).join(", ")
    if (have !== want) return `columns are [${have}], expected [${want}]`
    const havePartition = fields.filter((f) => partitionColumns.includes(f.name)).map(fieldText).join(", ")
    if (havePartition !== wantPartition) return `partition column is [${havePartition}], expected [${wantPartition}]`
    return undefined
  }
}

/**
 * The table format of a captured table (issue 19): one Delta table per source table, its columns
 * known at run time. `name` is for messages (the source table's qualified name); `keyColumns` the
 * row key (the primary key or the configured `key`; empty for a table only appended to).
 */
export const rowsFormat = (
  name: string,
  schema: TableSchema,
  partition: PartitionSpec,
  keyColumns: ReadonlyArray<string> = schema.key
): TableFormat<Row> => {
  const keyed: TableSchema = { columns: schema.columns, key: keyColumns }
  const schemaString = JSON.stringify(deltaSchema(keyed, partition))
  const partitionColumns = partitionColumnsOf(partition)
  const configuration = schemaConfiguration(keyed, partition)
  return {
    name,
    protocol: ordersProtocol,
    metadata: (id, tableConfiguration, createdTime): Metadata => ({
      id,
      name: null,
      description: `food-orders-pipeline: ${name} captured from PostgreSQL`,
      format: { provider: "parquet", options: {} },
      schemaString,
      partitionColumns,
      configuration: { ...tableConfiguration, ...configuration },
      createdTime
    }),
    schemaDifference: schemaDifferenceOf(keyed, partition),
    writer: (kvMetadata) => rowsFileWriter(keyed, kvMetadata),
    read: readRowsFile(keyed),
    stats: () => new RowsStats(keyed),
    partitionColumn: partition.kind === "date" ? partition.column : null,
    ...(keyColumns.length === 0 ? {} : { keys: rowsKeys(keyed) })
  }
}
