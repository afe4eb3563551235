import type { Column, Row, Scalar, ScalarType, TableSchema, Value } from "../domain/columns.ts"
import { columnIndex } from "../domain/columns.ts"
import type { AddFile } from "./actions.ts"
import { type ExactJson, parseExactJson } from "../domain/exactJson.ts"
import { readColumns } from "./rowsParquet.ts"
import type { RowKeys } from "./tableFormat.ts"

/**
 * A captured table's row keys, as canonical texts: a JSON array of the key values in key order, each
 * spelled one way whatever produced the row (the capture side or a data file):
 * integers, dates, decimals (unscaled) and timestamps (µs) as their digits (`[42,"x"]`; bigint never
 * through a float); floats and doubles as JavaScript's shortest spelling, -0 as 0, NaN and ±Infinity
 * as strings, and a float first rounded to 32 bits as the file stores it; strings as JSON strings;
 * binary as the JSON string `\x<hex>` (PostgreSQL's bytea text); booleans, null and arrays as JSON.
 * Types are fixed per position, so no two types' spellings meet.
 */

const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")

const numberText = (n: number): string =>
  Number.isNaN(n) ? `"NaN"` : n === Infinity ? `"Infinity"` : n === -Infinity ? `"-Infinity"` : Object.is(n, -0) ? "0" : String(n)

const scalarText = (type: ScalarType, value: Scalar): string => {
  if (value === null) return "null"
  if (typeof value === "bigint") return value.toString()
  if (typeof value === "number") return numberText(type.kind === "float" ? Math.fround(value) : value)
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "boolean") return value ? "true" : "false"
  return JSON.stringify(`\\x${hex(value)}`)
}

const valueText = (column: Column, value: Value): string => {
  const type = column.type
  if (type.kind !== "array") return scalarText(type, value as Scalar)
  if (value === null) return "null"
  return `[${(value as ReadonlyArray<Scalar>).map((v) => scalarText(type.element, v)).join(",")}]`
}

export const keyText = (columns: ReadonlyArray<Column>, values: ReadonlyArray<Value>): string =>
  `[${columns.map((column, i) => valueText(column, values[i] ?? null)).join(",")}]`

/** Keys parse as doubles (Node 20 has no JSON source text): beyond 2^53 a bound is widened by more than a double's error. */
const doubleSlack = 4096n

const boundOf = (value: unknown): bigint | undefined =>
  typeof value === "number" && Number.isFinite(value) && Number.isInteger(value) ? BigInt(value) : undefined

/**
 * Whether a file may hold one of `keys`, by the min/max of a single integral key column; true
 * whenever the statistics cannot tell (no stats, no bounds, several key columns, other types).
 */
const mayHoldOf = (column: Column) => (add: AddFile, keys: ReadonlySet<string>): boolean => {
  if (keys.size === 0) return false
  if (add.stats === undefined || add.stats === null) return true
  let stats: { minValues?: Record<string, unknown>; maxValues?: Record<string, unknown> }
  try {
    stats = JSON.parse(add.stats)
  } catch {
    return true
  }
  let min = boundOf(stats.minValues?.[column.name])
  let max = boundOf(stats.maxValues?.[column.name])
  if (min === undefined || max === undefined) return true
  if (min <= -(1n << 53n) || min >= 1n << 53n) min -= doubleSlack
  if (max <= -(1n << 53n) || max >= 1n << 53n) max += doubleSlack
  for (const key of keys) {
    const digits = key.slice(1, -1)
    if (!/^-?\d+$/.test(digits)) return true // a null key (a configured key may be nullable): nothing rules it out
    const k = BigInt(digits)
    if (k >= min && k <= max) return true
  }
  return false
}

export const rowsKeys = (schema: TableSchema): RowKeys<Row> => {
  const indices = schema.key.map((name) => {
    const i = columnIndex(schema, name)
    if (i < 0) throw new Error(`key column ${name} is not a column of the table`)
    return i
  })
  const keyColumns = indices.map((i) => schema.columns[i]!)
  const single = keyColumns.length === 1 ? keyColumns[0]! : undefined
  const integral = single !== undefined && ["short", "integer", "long"].includes(single.type.kind) ? single : undefined
  return {
    keyOf: (row) => keyText(keyColumns, indices.map((i) => row[i] ?? null)),
    readKeys: async (bytes) => (await readColumns(bytes, keyColumns)).map((values) => keyText(keyColumns, values)),
    mayHold: integral === undefined ? () => true : mayHoldOf(integral)
  }
}

const scalarOfText = (type: ScalarType, json: ExactJson): Scalar => {
  if (json.type === "null") return null
  if (type.kind === "binary" && json.type === "string") return Uint8Array.from(Buffer.from(json.value.slice(2), "hex"))
  if (json.type === "string") return json.value === "NaN" ? Number.NaN : json.value === "Infinity" ? Infinity : json.value === "-Infinity" ? -Infinity : json.value
  if (json.type === "boolean") return json.value
  if (json.type === "number") {
    switch (type.kind) {
      case "long":
      case "decimal":
      case "timestamp":
        return BigInt(json.text)
      default:
        return Number(json.text)
    }
  }
  throw new Error(`a key value of ${type.kind} cannot be ${json.type}`)
}

/**
 * The key columns' values of a key text (`keyOf`'s): a full row of the schema, null outside the key.
 * What a truncate needs to tell which partition a row's messages went to, from its key alone.
 */
export const keyRowOf = (schema: TableSchema, text: string): Row => {
  const parsed = parseExactJson(text)
  if (parsed._tag === "Left" || parsed.right.type !== "array") throw new Error(`not a key text: ${text}`)
  const items = parsed.right.items
  const row: Array<Value> = schema.columns.map(() => null)
  schema.key.forEach((name, i) => {
    const index = columnIndex(schema, name)
    const column = schema.columns[index]!
    const item = items[i] ?? { type: "null" as const }
    row[index] = column.type.kind === "array"
      ? item.type === "array" ? item.items.map((element) => scalarOfText((column.type as { element: ScalarType }).element, element)) : null
      : scalarOfText(column.type, item)
  })
  return row
}
