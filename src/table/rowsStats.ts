import type { Row, TableSchema } from "../domain/columns.ts"
import { statsTimestamp } from "./ordersTable.ts"
import type { RowStats } from "./tableFormat.ts"

/**
 * Exact per-file statistics of a captured table (engines trust them: numRecords answers count(*),
 * bounds skip files). Null counts for every top-level scalar column; bounds only where they are
 * exact and every engine parses them the same: integers and decimals as JSON number literals
 * (decimals from the unscaled bigint, never through a float), dates as `YYYY-MM-DD`, timestamps as
 * milliseconds. None for strings (Delta truncates and compares them in ways we would have to
 * copy), floats (NaN, -0), binary and arrays: a missing bound costs a scan, a wrong one loses rows.
 */

type Bounded = "integral" | "decimal" | "date" | "timestamp"

const boundedKind = (kind: string): Bounded | undefined =>
  kind === "short" || kind === "integer" || kind === "long"
    ? "integral"
    : kind === "decimal" || kind === "date" || kind === "timestamp"
    ? kind
    : undefined

/** `1230n` in decimal(5,2): `12.30`. */
export const decimalLiteral = (unscaledValue: bigint, scale: number): string => {
  if (scale === 0) return unscaledValue.toString()
  const negative = unscaledValue < 0n
  const digits = (negative ? -unscaledValue : unscaledValue).toString().padStart(scale + 1, "0")
  return `${negative ? "-" : ""}${digits.slice(0, -scale)}.${digits.slice(-scale)}`
}

const dayMillis = 86_400_000

/** Years 1..9999 only: what every engine's date parser takes; a bound outside is left out. */
const inCommonRange = (millis: number) => millis >= firstMillis && millis < pastLastMillis
/** 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z (Date.UTC maps years 0..99 to 1900..1999). */
const firstMillis = -62_135_596_800_000
const pastLastMillis = 253_402_300_800_000

export const statsDate = (days: number): string | undefined =>
  inCommonRange(days * dayMillis) ? new Date(days * dayMillis).toISOString().slice(0, 10) : undefined

/**
 * The minimum is floored to the millisecond (a lower bound); so is the maximum, which Delta reads
 * with a millisecond of slack for exactly that truncation (DataSkippingReader: "max + 1 ms").
 */
const statsInstant = (micros: bigint): string | undefined =>
  inCommonRange(Number(micros / 1000n)) ? statsTimestamp(micros) : undefined

export class RowsStats implements RowStats<Row> {
  readonly #schema: TableSchema
  #rows = 0
  readonly #nulls: Array<number>
  readonly #min: Array<number | bigint | null>
  readonly #max: Array<number | bigint | null>
  /** Indices of the columns counted (scalars) and bounded. */
  readonly #counted: Array<number>
  readonly #bounded: Array<number>

  constructor(schema: TableSchema) {
    this.#schema = schema
    const n = schema.columns.length
    this.#nulls = new Array(n).fill(0)
    this.#min = new Array(n).fill(null)
    this.#max = new Array(n).fill(null)
    this.#counted = schema.columns.flatMap((c, i) => (c.type.kind === "array" ? [] : [i]))
    this.#bounded = schema.columns.flatMap((c, i) => (boundedKind(c.type.kind) === undefined ? [] : [i]))
  }

  add(rows: ReadonlyArray<Row>): this {
    for (const row of rows) {
      for (const i of this.#counted) if ((row[i] ?? null) === null) this.#nulls[i]!++
      for (const i of this.#bounded) {
        const v = row[i] as number | bigint | null | undefined
        if (v === null || v === undefined) continue
        const min = this.#min[i]!
        const max = this.#max[i]!
        if (min === null || v < min) this.#min[i] = v
        if (max === null || v > max) this.#max[i] = v
      }
    }
    this.#rows += rows.length
    return this
  }

  get rows() {
    return this.#rows
  }

  #bound(i: number, value: number | bigint): string | undefined {
    const type = this.#schema.columns[i]!.type
    switch (type.kind) {
      case "decimal":
        return decimalLiteral(value as bigint, type.scale)
      case "date": {
        const text = statsDate(Number(value))
        return text === undefined ? undefined : JSON.stringify(text)
      }
      case "timestamp": {
        const text = statsInstant(value as bigint)
        return text === undefined ? undefined : JSON.stringify(text)
      }
      default:
        return value.toString()
    }
  }

  json(): string {
    if (this.#rows === 0) return `{"numRecords":0}`
    const name = (i: number) => JSON.stringify(this.#schema.columns[i]!.name)
    const bounds = (values: Array<number | bigint | null>) =>
      this.#bounded.flatMap((i) => {
        const v = values[i]
        const text = v === null || v === undefined ? undefined : this.#bound(i, v)
        return text === undefined ? [] : [`${name(i)}:${text}`]
      }).join(",")
    const nulls = this.#counted.map((i) => `${name(i)}:${this.#nulls[i]}`).join(",")
    return `{"numRecords":${this.#rows},"minValues":{${bounds(this.#min)}},"maxValues":{${bounds(this.#max)}},"nullCount":{${nulls}}}`
  }
}
