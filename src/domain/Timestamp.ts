import { Either, ParseResult, Schema } from "effect"

/**
 * Instants are microseconds since the Unix epoch (UTC), as a bigint.
 * PostgreSQL TIMESTAMP has microsecond precision and a JS Date only milliseconds;
 * the capture cursor compares exact values, so a Date would re-read rows forever.
 */
export const Micros = Schema.BigIntFromSelf.pipe(Schema.brand("Micros"))
export type Micros = typeof Micros.Type

const isoPattern =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/

/** Parses ISO-8601 with an explicit zone (`Z` or `±HH:MM`); `undefined` when zone-less or invalid. */
export const parseIsoMicros = (text: string): Micros | undefined => {
  const m = isoPattern.exec(text)
  if (m === null) return undefined
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const frac = m[7] ?? ""
  const zone = m[8]!
  const millis = Date.UTC(y, mo - 1, d, h, mi, s)
  const back = new Date(millis)
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined
  let offsetMinutes = 0
  if (zone !== "Z") {
    const digits = zone.slice(1).replace(":", "")
    offsetMinutes = (zone.startsWith("-") ? -1 : 1) * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4)))
  }
  const fracMicros = BigInt((frac + "000000").slice(0, 6))
  return Micros.make(BigInt(millis - offsetMinutes * 60_000) * 1000n + fracMicros)
}

const floorDiv = (a: bigint, b: bigint): bigint => {
  const q = a / b
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q
}

/** `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; the fraction only when non-zero, trailing zeros trimmed. */
export const formatIsoMicros = (micros: bigint): string => {
  const seconds = floorDiv(micros, 1_000_000n)
  const fraction = micros - seconds * 1_000_000n
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19)
  return fraction === 0n ? `${base}Z` : `${base}.${String(fraction).padStart(6, "0").replace(/0+$/, "")}Z`
}

export const microsFromDate = (date: Date): Micros => Micros.make(BigInt(date.getTime()) * 1000n)

/** The UTC calendar date `YYYY-MM-DD` an instant falls on: the lake's partition value. */
export const utcDate = (micros: Micros): string =>
  new Date(Number(floorDiv(micros, 1000n))).toISOString().slice(0, 10)

/** An ISO-8601 string with a zone, decoded to microseconds; encodes to the `Z` form. */
export const IsoTimestamp = Schema.transformOrFail(Schema.String, Micros, {
  strict: true,
  decode: (text, _, ast) => {
    const micros = parseIsoMicros(text)
    return micros === undefined
      ? Either.left(new ParseResult.Type(ast, text, "Expected an ISO-8601 timestamp with a zone, e.g. 2025-01-15T12:24:00Z"))
      : Either.right(micros)
  },
  encode: (micros) => Either.right(formatIsoMicros(micros))
})

/** A TIMESTAMP from a database row: a Date from the driver, or text we formatted as UTC with microseconds. */
export const RowTimestamp = Schema.Union(
  IsoTimestamp,
  Schema.transform(Schema.DateFromSelf, Micros, {
    strict: true,
    decode: (date) => microsFromDate(date),
    encode: (micros) => new Date(Number(micros / 1000n))
  })
)
