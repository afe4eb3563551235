import { dateText } from "./civilDate.ts"
import type { Column, ColumnType, ScalarType, Value } from "./columns.ts"

/**
 * A value in memory back to the JSON fragment the producer publishes for it (the rules are in
 * src/layers/postgres/pgText.ts). It writes what PostgreSQL's text would have become, so that a
 * key decoded from a row gives the same text as the key the producer wrote (rowDecode.ts keyText).
 */

/** numeric and numeric[] (not a domain over them): OIDs fixed by PostgreSQL's catalog. */
const numericOids: ReadonlySet<number> = new Set([1700, 1231])

/**
 * An unconstrained numeric (the lake's string type) still travels as a JSON number with its exact
 * text. Only the column's own OID says so: a domain over numeric travels as a JSON string, which
 * the consumer reads to the same string value.
 */
export const carriesNumber = (column: Column): boolean => numericOids.has(column.typeOid)

/** A JSON number literal, as RFC 8259 spells it. */
export const jsonNumberPattern = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/

const pad = (n: number | bigint, width: number) => String(n).padStart(width, "0")

/** numeric(p,s) prints exactly s fraction digits: 1230n at scale 2 is `12.30`. */
export const decimalText = (unscaled: bigint, scale: number): string => {
  const negative = unscaled < 0n
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, "0")
  const body = scale === 0 ? digits : `${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`
  return negative ? `-${body}` : body
}

/**
 * float4/float8 as PostgreSQL 12+ prints them (extra_float_digits > 0, src/common/d2s.c and f2s.c):
 * the shortest digits that read back to the same value, fixed-point when the decimal exponent is
 * in [-4, 15) for double ([-4, 6) for real), else `d.ddde+XX` with at least two exponent digits.
 */
export const floatText = (value: number, single: boolean): string => {
  if (Number.isNaN(value)) return "NaN"
  if (value === Infinity) return "Infinity"
  if (value === -Infinity) return "-Infinity"
  if (value === 0) return Object.is(value, -0) ? "-0" : "0"
  const negative = value < 0
  let shortest = Math.abs(value).toExponential()
  if (single) {
    const f = Math.fround(Math.abs(value))
    for (let precision = 1; precision <= 9; precision++) {
      const candidate = Number(f.toPrecision(precision))
      if (Math.fround(candidate) === f) {
        shortest = candidate.toExponential()
        break
      }
    }
  }
  const [mantissa, exponentText] = shortest.split("e") as [string, string]
  const digits = mantissa.replace(".", "")
  const exponent = Number(exponentText)
  let body: string
  if (exponent >= -4 && exponent < (single ? 6 : 15)) {
    if (exponent < 0) body = `0.${"0".repeat(-exponent - 1)}${digits}`
    else if (exponent >= digits.length - 1) body = digits + "0".repeat(exponent - (digits.length - 1))
    else body = `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`
  } else {
    const magnitude = Math.abs(exponent)
    body = `${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ""}e${exponent < 0 ? "-" : "+"}${pad(magnitude, 2)}`
  }
  return negative ? `-${body}` : body
}

const microsPerDay = 86_400_000_000n

/** `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, trailing zeros of the fraction dropped as PostgreSQL drops them. */
export const timestampText = (micros: bigint): string => {
  let days = micros / microsPerDay
  let ofDay = micros - days * microsPerDay
  if (ofDay < 0n) {
    days -= 1n
    ofDay += microsPerDay
  }
  const seconds = ofDay / 1_000_000n
  const fraction = ofDay % 1_000_000n
  const time = `${pad(seconds / 3600n, 2)}:${pad((seconds / 60n) % 60n, 2)}:${pad(seconds % 60n, 2)}`
  const frac = fraction === 0n ? "" : `.${pad(fraction, 6).replace(/0+$/, "")}`
  return `${dateText(Number(days))}T${time}${frac}Z`
}

const scalarJson = (type: ScalarType, number: boolean, value: Value, name: string): string => {
  if (value === null) return "null"
  const wrong = () => new Error(`column ${name}: ${String(value)} is not a ${type.kind} value`)
  switch (type.kind) {
    case "short":
    case "integer":
      if (typeof value !== "number" || !Number.isInteger(value)) throw wrong()
      return String(value)
    case "long":
      if (typeof value !== "bigint") throw wrong()
      return value.toString()
    case "decimal":
      if (typeof value !== "bigint") throw wrong()
      return decimalText(value, type.scale)
    case "float":
    case "double": {
      if (typeof value !== "number") throw wrong()
      const text = floatText(value, type.kind === "float")
      return jsonNumberPattern.test(text) ? text : JSON.stringify(text)
    }
    case "boolean":
      if (typeof value !== "boolean") throw wrong()
      return value ? "true" : "false"
    case "string":
      if (typeof value !== "string") throw wrong()
      return number && jsonNumberPattern.test(value) ? value : JSON.stringify(value)
    case "date":
      if (typeof value !== "number" || !Number.isInteger(value)) throw wrong()
      return JSON.stringify(dateText(value))
    case "timestamp":
      if (typeof value !== "bigint") throw wrong()
      return JSON.stringify(timestampText(value))
    case "binary":
      if (!(value instanceof Uint8Array)) throw wrong()
      return JSON.stringify(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64"))
  }
}

/** The JSON fragment of `value` in `column` (throws when the value is not of the column's type: a bug). */
export const valueJson = (column: Column, value: Value): string => {
  const type: ColumnType = column.type
  const number = carriesNumber(column)
  if (type.kind !== "array") return scalarJson(type, number, value, column.name)
  if (value === null) return "null"
  if (!Array.isArray(value)) throw new Error(`column ${column.name}: ${String(value)} is not an array`)
  return `[${(value as ReadonlyArray<Value>).map((element) => scalarJson(type.element, number, element, column.name)).join(",")}]`
}
