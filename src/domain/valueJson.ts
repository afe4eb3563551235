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

/** A finite nonzero |value| as m * 2^e exactly, and whether the gap to the next value below is half the one above. */
const decompose = (value: number, single: boolean): { readonly m: bigint; readonly e: number; readonly narrowBelow: boolean } => {
  const view = new DataView(new ArrayBuffer(8))
  if (single) {
    view.setFloat32(0, value)
    const bits = view.getUint32(0)
    const exponent = (bits >>> 23) & 0xff
    const mantissa = bits & 0x7fffff
    return exponent === 0
      ? { m: BigInt(mantissa), e: -149, narrowBelow: false }
      : { m: BigInt(mantissa | 0x800000), e: exponent - 150, narrowBelow: mantissa === 0 && exponent > 1 }
  }
  view.setFloat64(0, value)
  const bits = view.getBigUint64(0)
  const exponent = Number((bits >> 52n) & 0x7ffn)
  const mantissa = bits & 0xfffffffffffffn
  return exponent === 0
    ? { m: mantissa, e: -1074, narrowBelow: false }
    : { m: mantissa | 0x10000000000000n, e: exponent - 1075, narrowBelow: mantissa === 0n && exponent > 1 }
}

const pow = (base: bigint, n: number) => base ** BigInt(Math.max(0, n))

/**
 * The shortest decimal digits D and exponent k (|value| = D * 10^k read back) as PostgreSQL's Ryu
 * (src/common/d2s.c, f2s.c) picks them: built without STRICTLY_SHORTEST, a decimal exactly halfway
 * to the neighbouring float does not count as reading back (JavaScript's shortest form may use it:
 * 5.56404097804124e+17 where PostgreSQL prints 5.5640409780412403e+17), and of the candidates of
 * the shortest length the nearest wins, a tie going to the even one.
 */
const shortestDigits = (value: number, single: boolean): { readonly digits: string; readonly exponent: number } => {
  const { m, e, narrowBelow } = decompose(value, single)
  for (let precision = 1; precision <= 17; precision++) {
    let k = Math.floor(Math.log10(value)) - precision + 1
    let d = 0n
    for (let attempt = 0; attempt < 3; attempt++) {
      // d = round(m * 2^e / 10^k), ties to even.
      const num = m * pow(2n, e) * pow(10n, -k)
      const den = pow(2n, -e) * pow(10n, k)
      d = num / den
      const twice = 2n * (num - d * den)
      if (twice > den || (twice === den && d % 2n === 1n)) d += 1n
      if (d >= 10n ** BigInt(precision)) k += 1
      else if (d < 10n ** BigInt(precision - 1)) k -= 1
      else break
    }
    // In units of 2^-A * 10^-B: the value, the half gaps to its neighbours, and candidates.
    const a = Math.max(0, 2 - e)
    const b = Math.max(0, -k)
    const scaledValue = m * pow(2n, e + a) * pow(10n, b)
    const above = pow(2n, e - 1 + a) * pow(10n, b)
    const below = narrowBelow ? pow(2n, e - 2 + a) * pow(10n, b) : above
    const inside = (candidate: bigint) => {
      const scaled = candidate * pow(10n, k + b) * pow(2n, a)
      return scaled > scaledValue - below && scaled < scaledValue + above
    }
    const chosen = inside(d) ? d : inside(d + 1n) ? d + 1n : inside(d - 1n) ? d - 1n : undefined
    if (chosen === undefined || chosen === 0n) continue
    const text = chosen.toString()
    const trimmed = text.replace(/0+$/, "")
    return { digits: trimmed, exponent: k + text.length - 1 }
  }
  // Unreachable: 17 digits always read back a double.
  const [mantissa, exponentText] = value.toExponential().split("e") as [string, string]
  return { digits: mantissa.replace(".", ""), exponent: Number(exponentText) }
}

/**
 * float4/float8 as PostgreSQL 12+ prints them (extra_float_digits > 0): the shortest digits that
 * read back to the same value, fixed-point when the decimal exponent is in [-4, 15) for double
 * ([-4, 6) for real), else `d.ddde+XX` with at least two exponent digits.
 */
export const floatText = (value: number, single: boolean): string => {
  if (Number.isNaN(value)) return "NaN"
  if (value === Infinity) return "Infinity"
  if (value === -Infinity) return "-Infinity"
  const rounded = single ? Math.fround(value) : value
  if (rounded === 0) return Object.is(rounded, -0) ? "-0" : "0"
  const negative = rounded < 0
  const { digits, exponent } = shortestDigits(Math.abs(rounded), single)
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
