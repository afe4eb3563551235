import { type FileMetaData, parquetMetadata, parquetReadObjects, type SchemaElement } from "hyparquet"
import type { ColumnSource } from "hyparquet-writer"
import type { Column, ColumnType, Row, Scalar, ScalarType, TableSchema, Value } from "../domain/columns.ts"
import { asyncBuffer, ParquetRowsWriter } from "./ordersFile.ts"

/**
 * A captured table's rows in Parquet (issue 19), typed for every engine: the physical type and
 * annotations Spark itself writes for each Delta type, so Spark, DuckDB and hyparquet read the same
 * values back. Partition columns are never in the files.
 */

/** Bytes of the smallest two's complement integer that holds every unscaled decimal of `precision` digits. */
export const decimalBytes = (precision: number): number => {
  const largest = 10n ** BigInt(precision) - 1n
  let bytes = 1
  while (largest > (1n << BigInt(8 * bytes - 1)) - 1n) bytes++
  return bytes
}

const scalarElement = (type: ScalarType): Omit<SchemaElement, "name" | "repetition_type"> => {
  switch (type.kind) {
    case "short":
      // The converted type alone: hyparquet-writer encodes the INTEGER logical type's bitWidth as an
      // i32 where Thrift wants an i8, and Spark (parquet-java) and DuckDB then refuse the whole footer.
      // parquet-java derives INTEGER(16, signed) from INT_16 anyway.
      return { type: "INT32", converted_type: "INT_16" }
    case "integer":
      return { type: "INT32" }
    case "long":
      return { type: "INT64" }
    case "decimal": {
      const { precision, scale } = type
      const annotation = { converted_type: "DECIMAL", precision, scale, logical_type: { type: "DECIMAL", precision, scale } } as const
      // Spark's own choice (ParquetSchemaConverter, writeLegacyFormat off): the narrowest integer, else FLBA.
      if (precision <= 9) return { type: "INT32", ...annotation }
      if (precision <= 18) return { type: "INT64", ...annotation }
      return { type: "FIXED_LEN_BYTE_ARRAY", type_length: decimalBytes(precision), ...annotation }
    }
    case "float":
      return { type: "FLOAT" }
    case "double":
      return { type: "DOUBLE" }
    case "boolean":
      return { type: "BOOLEAN" }
    case "string":
      return { type: "BYTE_ARRAY", converted_type: "UTF8", logical_type: { type: "STRING" } }
    case "date":
      return { type: "INT32", converted_type: "DATE", logical_type: { type: "DATE" } }
    case "timestamp":
      // hyparquet-writer's plain TIMESTAMP means milliseconds: the unit is explicit (lake-table.md).
      return {
        type: "INT64",
        converted_type: "TIMESTAMP_MICROS",
        logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" }
      }
    case "binary":
      return { type: "BYTE_ARRAY" }
  }
}

/** A column's schema elements: one for a scalar, the standard three-level LIST for an array. */
const columnElements = (column: Column): Array<SchemaElement> => {
  const type = column.type
  if (type.kind !== "array") return [{ name: column.name, repetition_type: "OPTIONAL", ...scalarElement(type) } as SchemaElement]
  return [
    { name: column.name, repetition_type: "OPTIONAL", converted_type: "LIST", logical_type: { type: "LIST" }, num_children: 1 },
    { name: "list", repetition_type: "REPEATED", num_children: 1 },
    { name: "element", repetition_type: "OPTIONAL", ...scalarElement(type.element) } as SchemaElement
  ]
}

/** Every column OPTIONAL, as the Delta schema's fields are nullable (rowsSchema.ts). */
export const parquetSchemaOf = (schema: TableSchema): Array<SchemaElement> => [
  { name: "spark_schema", num_children: schema.columns.length },
  ...schema.columns.flatMap(columnElements)
]

const isFloating = (type: ColumnType): boolean =>
  type.kind === "array" ? isFloating(type.element) : type.kind === "float" || type.kind === "double"

/**
 * No Parquet bounds for floating-point columns: hyparquet-writer leaves NaN out of them, as the
 * Parquet spec says, but Spark orders NaN above every number and trusts the bounds, so a row group
 * of 1.5 and NaN was skipped for `ratio > 2` and its NaN row lost (rowsTableSpark.test.ts).
 */
const columnsOf = (schema: TableSchema) => (rows: ReadonlyArray<Row>): Array<ColumnSource> =>
  schema.columns.map((column, c) => {
    const data = new Array<Value>(rows.length)
    for (let i = 0; i < rows.length; i++) data[i] = rows[i]![c] ?? null
    return {
      name: column.name,
      data: data as Array<unknown> as ColumnSource["data"],
      ...(isFloating(column.type) ? { statistics: false } : {})
    }
  })

/** A Parquet file of a captured table's rows being written, chunk by chunk. */
export const rowsFileWriter = (schema: TableSchema, kvMetadata?: ReadonlyArray<{ key: string; value: string }>) =>
  new ParquetRowsWriter<Row>(parquetSchemaOf(schema), columnsOf(schema), kvMetadata)

const fileMetadata = (bytes: Uint8Array): FileMetaData =>
  parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer)

/** Big-endian two's complement, as Parquet stores FIXED_LEN_BYTE_ARRAY and BYTE_ARRAY decimals. */
const signedBigEndian = (bytes: Uint8Array): bigint => {
  if (bytes.length === 0) return 0n
  let value = 0n
  for (const byte of bytes) value = (value << 8n) | BigInt(byte)
  return bytes[0]! >= 0x80 ? value - (1n << BigInt(8 * bytes.length)) : value
}

/**
 * hyparquet turns decimals into floats, which cannot hold them: with the annotation taken off the
 * file's schema it hands over the stored integers (number, bigint or bytes), decoded here exactly.
 */
const withRawDecimals = (metadata: FileMetaData): { metadata: FileMetaData; scales: Map<string, number> } => {
  const scales = new Map<string, number>() // by top-level column: its own scale, or its list elements'
  const schema = [...metadata.schema]
  let i = 1
  const visit = (top: string): void => {
    const index = i++
    const element = schema[index]!
    if (element.converted_type === "DECIMAL" || element.logical_type?.type === "DECIMAL") {
      scales.set(top, element.scale ?? (element.logical_type?.type === "DECIMAL" ? element.logical_type.scale : 0))
      const { converted_type: _converted, logical_type: _logical, ...raw } = element
      schema[index] = raw as SchemaElement
    }
    for (let child = 0; child < (element.num_children ?? 0); child++) visit(top)
  }
  while (i < schema.length) visit(schema[i]!.name)
  return { metadata: { ...metadata, schema }, scales }
}

const unscaled = (value: unknown, fileScale: number, scale: number, column: string): bigint => {
  const stored = typeof value === "bigint" ? value : typeof value === "number" ? BigInt(value) : value instanceof Uint8Array ? signedBigEndian(value) : undefined
  if (stored === undefined) throw new Error(`${column}: expected a decimal, got ${String(value)}`)
  if (fileScale === scale) return stored
  if (fileScale < scale) return stored * 10n ** BigInt(scale - fileScale)
  throw new Error(`${column}: the file's decimal scale ${fileScale} exceeds the table's ${scale}`)
}

const scalarValue = (type: ScalarType, value: unknown, column: string, fileScale: number): Scalar => {
  if (value === null || value === undefined) return null
  switch (type.kind) {
    case "short":
    case "integer":
    case "date":
      if (typeof value === "bigint") return Number(value)
      if (typeof value !== "number") throw new Error(`${column}: expected an integer, got ${String(value)}`)
      return value
    case "long":
    case "timestamp":
      if (typeof value === "number") return BigInt(value)
      if (typeof value !== "bigint") throw new Error(`${column}: expected a long, got ${String(value)}`)
      return value
    case "decimal":
      return unscaled(value, fileScale, type.scale, column)
    case "float":
    case "double":
      if (typeof value !== "number") throw new Error(`${column}: expected a number, got ${String(value)}`)
      return value
    case "boolean":
      if (typeof value !== "boolean") throw new Error(`${column}: expected a boolean, got ${String(value)}`)
      return value
    case "string":
      if (typeof value !== "string") throw new Error(`${column}: expected text, got ${typeof value}`)
      return value
    case "binary":
      if (typeof value === "string") return new TextEncoder().encode(value)
      if (!(value instanceof Uint8Array)) throw new Error(`${column}: expected bytes, got ${typeof value}`)
      return value
  }
}

const columnValue = (type: ColumnType, value: unknown, column: string, fileScale: number): Value => {
  if (type.kind !== "array") return scalarValue(type, value, column, fileScale)
  if (value === null || value === undefined) return null
  if (!Array.isArray(value)) throw new Error(`${column}: expected an array, got ${typeof value}`)
  return value.map((element) => scalarValue(type.element, element, column, fileScale))
}

/** Timestamps as exact microseconds, dates as days, whatever unit the writer used (Spark may write INT96). */
const parsers = {
  timestampFromMilliseconds: (millis: bigint) => millis * 1000n,
  timestampFromMicroseconds: (micros: bigint) => micros,
  timestampFromNanoseconds: (nanos: bigint) => (nanos >= 0n ? nanos / 1000n : -((-nanos + 999n) / 1000n)),
  dateFromDays: (days: number) => days
}

/**
 * The values of `columns` (a subset of the schema's, in any order) in rows [rowStart, rowEnd) of a
 * data file, one array per row in `columns`' order. A column the file lacks (written before the
 * column was added) reads as null.
 */
export const readColumns = async (
  bytes: Uint8Array,
  columns: ReadonlyArray<Column>,
  rowStart?: number,
  rowEnd?: number
): Promise<Array<Array<Value>>> => {
  const { metadata, scales } = withRawDecimals(fileMetadata(bytes))
  const topLevel = new Set(topLevelNames(metadata.schema))
  const present = columns.filter((c) => topLevel.has(c.name))
  const total = Number(metadata.num_rows)
  const start = Math.max(0, rowStart ?? 0)
  const end = Math.min(total, rowEnd ?? total)
  const count = Math.max(0, end - start)
  const objects = present.length === 0
    ? new Array<Record<string, unknown>>(count).fill({})
    : await parquetReadObjects({
      file: asyncBuffer(bytes),
      metadata,
      columns: present.map((c) => c.name),
      parsers,
      utf8: false,
      rowStart: start,
      rowEnd: end
    })
  return objects.map((object) =>
    columns.map((column) =>
      topLevel.has(column.name) ? columnValue(column.type, object[column.name], column.name, scales.get(column.name) ?? 0) : null
    )
  )
}

/** The names of the root's children, skipping nested groups' descendants. */
const topLevelNames = (schema: ReadonlyArray<SchemaElement>): Array<string> => {
  const names: Array<string> = []
  let i = 1
  const skip = (): void => {
    const element = schema[i++]!
    for (let child = 0; child < (element.num_children ?? 0); child++) skip()
  }
  while (i < schema.length) {
    names.push(schema[i]!.name)
    skip()
  }
  return names
}

/** Rows [rowStart, rowEnd) of a data file under `schema` (possibly newer than the file). */
export const readRowsFile = (schema: TableSchema) => (bytes: Uint8Array, rowStart?: number, rowEnd?: number): Promise<Array<Row>> =>
  readColumns(bytes, schema.columns, rowStart, rowEnd)
