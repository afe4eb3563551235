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
export const parseIsoMicros = (text: string): Micros | undefined => parseCanonical(text) ?? parseIsoMicrosGeneral(text)

/** The general parser (any zone, `T` or space): the reference the fast path is tested against. */
export const parseIsoMicrosGeneral = (text: string): Micros | undefined => {
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

/** The general formatter (any instant Date can show): the reference the fast path is tested against. */
export const formatIsoMicrosGeneral = (micros: bigint): string => {
  const seconds = floorDiv(micros, 1_000_000n)
  const fraction = micros - seconds * 1_000_000n
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19)
  return fraction === 0n ? `${base}Z` : `${base}.${String(fraction).padStart(6, "0").replace(/0+$/, "")}Z`
}

/** Formats as ISO-8601 UTC with `Z`, microseconds without trailing zeros (what the messages carry). */
export const formatIsoMicros = (micros: bigint): string => formatCanonical(micros) ?? formatIsoMicrosGeneral(micros)

// The fast paths below run for every order (producer: format; consumer: parse and partition date).
// They cover the years 1000-9999 within Number's exact range (1685-2255 as microseconds) and give
// way to the general functions outside it; unit tests hold them equal on random instants and texts.

const MICROS_PER_DAY = 86_400_000_000
const MIN_FAST_DAYS = -100_000 // 1696-03-18
const MAX_FAST_DAYS = 100_000 // 2243-10-17
const pad2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, "0"))

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
const daysFromCivil = (y: number, m: number, d: number): number => {
  const yy = m <= 2 ? y - 1 : y
  const era = Math.floor(yy / 400)
  const yoe = yy - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

/** `YYYY-MM-DD` of a day number, remembering the last one: consecutive orders share their day. */
let lastDay = Number.NaN
let lastDayText = ""
const dayText = (days: number): string => {
  if (days === lastDay) return lastDayText
  const z = days + 719468
  const era = Math.floor(z / 146097)
  const doe = z - era * 146097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1
  const m = mp < 10 ? mp + 3 : mp - 9
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0)
  lastDay = days
  lastDayText = `${y}-${pad2[m]}-${pad2[d]}`
  return lastDayText
}

const formatCanonical = (micros: bigint): string | undefined => {
  const n = Number(micros)
  const days = Math.floor(n / MICROS_PER_DAY)
  if (!(days >= MIN_FAST_DAYS && days <= MAX_FAST_DAYS)) return undefined
  const ofDay = n - days * MICROS_PER_DAY
  const seconds = Math.floor(ofDay / 1_000_000)
  let fraction = ofDay - seconds * 1_000_000
  const time = `${pad2[Math.floor(seconds / 3600)]}:${pad2[Math.floor(seconds / 60) % 60]}:${pad2[seconds % 60]}`
  if (fraction === 0) return `${dayText(days)}T${time}Z`
  let digits = 6
  while (fraction % 10 === 0) {
    fraction /= 10
    digits -= 1
  }
  return `${dayText(days)}T${time}.${String(fraction).padStart(digits, "0")}Z`
}

const digitAt = (text: string, i: number): number => {
  const c = text.charCodeAt(i) - 48
  return c >= 0 && c <= 9 ? c : Number.NaN
}
const twoDigits = (text: string, i: number) => digitAt(text, i) * 10 + digitAt(text, i + 1)
const daysInMonth = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0

/** `YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z`, the form our messages and capture query use; else undefined. */
const parseCanonical = (text: string): Micros | undefined => {
  const length = text.length
  if (length < 20 || length > 30 || text.charCodeAt(length - 1) !== 90 /* Z */) return undefined
  if (text[4] !== "-" || text[7] !== "-" || text[10] !== "T" || text[13] !== ":" || text[16] !== ":") return undefined
  const y = twoDigits(text, 0) * 100 + twoDigits(text, 2)
  const mo = twoDigits(text, 5)
  const d = twoDigits(text, 8)
  const h = twoDigits(text, 11)
  const mi = twoDigits(text, 14)
  const s = twoDigits(text, 17)
  // NaN (a non-digit) fails every comparison below.
  if (!(y >= 1000 && mo >= 1 && mo <= 12 && d >= 1 && h <= 23 && mi <= 59 && s <= 59)) return undefined
  if (!(d <= (mo === 2 && isLeap(y) ? 29 : daysInMonth[mo - 1]!))) return undefined
  let fraction = 0
  if (length > 20) {
    if (text[19] !== "." || length === 21) return undefined
    for (let i = 20; i < length - 1; i++) {
      const digit = digitAt(text, i)
      if (Number.isNaN(digit)) return undefined
      if (i < 26) fraction = fraction * 10 + digit
    }
    for (let i = Math.min(length - 1, 26); i < 26; i++) fraction *= 10
  }
  const days = daysFromCivil(y, mo, d)
  if (!(days >= MIN_FAST_DAYS && days <= MAX_FAST_DAYS)) return undefined
  return Micros.make(BigInt(days * MICROS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1_000_000 + fraction))
}

export const microsFromDate = (date: Date): Micros => Micros.make(BigInt(date.getTime()) * 1000n)

/** The UTC calendar date `YYYY-MM-DD` an instant falls on: the lake's partition value. */
export const utcDate = (micros: Micros): string => {
  const days = Math.floor(Number(micros) / MICROS_PER_DAY)
  return days >= MIN_FAST_DAYS && days <= MAX_FAST_DAYS ? dayText(days) : utcDateGeneral(micros)
}

/** The general partition date: the reference the fast path is tested against. */
export const utcDateGeneral = (micros: Micros): string =>
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
