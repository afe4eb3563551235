/**
 * The columns of a captured table beyond the orders contract (issue 19: any table, any schema), as
 * the pipeline carries them from the PostgreSQL catalog to the Delta table. One vocabulary for the
 * capture side (catalog, pgoutput text, JSON on the topic) and the table side (Delta schema,
 * Parquet files, statistics).
 */

/**
 * A column's type in the lake. Each PostgreSQL type maps to exactly one (src/layers/postgres/pgTypes.ts):
 * smallint short, integer integer, bigint long, numeric(p,s) with p <= 38 decimal(p,s), real float,
 * double precision double, boolean boolean, date date, timestamp and timestamptz timestamp (a UTC
 * instant), bytea binary; text, varchar, char, uuid, json, jsonb, enums, time, timetz and numeric
 * without a precision (or one above 38) string, with their PostgreSQL text exactly.
 */
export type ScalarType =
  | { readonly kind: "short" }
  | { readonly kind: "integer" }
  | { readonly kind: "long" }
  | { readonly kind: "decimal"; readonly precision: number; readonly scale: number }
  | { readonly kind: "float" }
  | { readonly kind: "double" }
  | { readonly kind: "boolean" }
  | { readonly kind: "string" }
  | { readonly kind: "date" }
  | { readonly kind: "timestamp" }
  | { readonly kind: "binary" }

/** One-dimensional arrays of a scalar type (PostgreSQL `integer[]`, `text[]`, ...), elements nullable. */
export type ColumnType = ScalarType | { readonly kind: "array"; readonly element: ScalarType }

export interface Column {
  readonly name: string
  /** PostgreSQL's spelling of the type, as `format_type` prints it: `numeric(12,3)`, `timestamp with time zone`, `integer[]`. */
  readonly pgType: string
  /** The type's OID (an array column: the array type's OID), as pgoutput's Relation message gives it. */
  readonly typeOid: number
  readonly type: ColumnType
  /** False for NOT NULL columns. */
  readonly nullable: boolean
}

export interface TableSchema {
  /** In the table's column order (attnum). */
  readonly columns: ReadonlyArray<Column>
  /** The key columns' names in key order: the primary key, or the configured `key`. */
  readonly key: ReadonlyArray<string>
}

/**
 * A value in memory, one representation per type:
 * short, integer: number; long: bigint; decimal(p,s): bigint, the unscaled value (12.30 in
 * decimal(5,2) is 1230n); float, double: number (NaN and ±Infinity allowed); boolean: boolean;
 * string: string; date: number, days since 1970-01-01; timestamp: bigint, microseconds since
 * 1970-01-01T00:00:00Z; binary: Uint8Array; array: an array of its element's values (null elements
 * allowed). null is SQL NULL for every type.
 */
export type Scalar = null | boolean | number | bigint | string | Uint8Array
export type Value = Scalar | ReadonlyArray<Scalar>

/** A row: one value per column of its schema, in the schema's column order. */
export type Row = ReadonlyArray<Value>

export const columnIndex = (schema: TableSchema, name: string): number => schema.columns.findIndex((column) => column.name === name)

/** `decimal(10,2)`, `array<long>`: the type as Delta's schema and Spark's messages spell it. */
export const typeName = (type: ColumnType): string =>
  type.kind === "array" ? `array<${typeName(type.element)}>` : type.kind === "decimal" ? `decimal(${type.precision},${type.scale})` : type.kind
