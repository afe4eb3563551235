import { Either } from "effect"
import { daysFromCivil, isValidDate } from "./civilDate.ts"
import { type Column, columnIndex, type Row, type Scalar, type ScalarType, type TableSchema, typeName, type Value } from "./columns.ts"
import { type ExactJson, exactJsonText, parseExactJson } from "./exactJson.ts"
import { valueJson } from "./valueJson.ts"

/**
 * A row's JSON from the topic (src/layers/postgres/pgText.ts wrote it) to its values in memory, one
 * representation per type as src/domain/columns.ts says. Left: why the message cannot become a row,
 * worded to be a dead-letter reason.
 */

type Decoded<A> = Either.Either<A, string>

const shown = (json: ExactJson) => {
  const text = exactJsonText(json)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

const integerRanges = {
  short: [-32768n, 32767n],
  integer: [-2147483648n, 2147483647n],
  long: [-9223372036854775808n, 9223372036854775807n]
} as const

const integerPattern = /^-?\d+$/
const decimalPattern = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/
const datePattern = /^(\d{4})-(\d{2})-(\d{2})$/
const timestampPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$/
const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const floatSpecials: Readonly<Record<string, number>> = { NaN: Number.NaN, Infinity: Infinity, "-Infinity": -Infinity }

/**
 * A JSON number into decimal(p,s) as its unscaled value, exactly: digits beyond the scale must be
 * zeros (12.300 is 12.30; 12.345 does not fit), and at most p - s integer digits.
 */
const decimalOf = (text: string, precision: number, scale: number): Decoded<bigint> => {
  const type = `decimal(${precision},${scale})`
  const m = decimalPattern.exec(text)
  if (m === null) return Either.left(`${text} is not a number`)
  const [, sign, whole, fraction = "", exponentText] = m
  const exponent = Number(exponentText ?? 0)
  // value = digits * 10^(exponent - fraction.length); unscaled = value * 10^scale.
  const digits = (whole! + fraction).replace(/^0+(?=\d)/, "")
  const shift = exponent - fraction.length + scale
  let unscaled: bigint
  if (shift >= 0) {
    if (shift > precision + 1) {
      if (/^0+$/.test(digits)) unscaled = 0n
      else return Either.left(`${text} has more than ${precision - scale} integer digits (${type})`)
    } else unscaled = BigInt(digits) * 10n ** BigInt(shift)
  } else {
    const cut = -shift
    const kept = digits.length > cut ? digits.slice(0, digits.length - cut) : "0"
    const dropped = digits.slice(Math.max(0, digits.length - cut))
    if (/[1-9]/.test(dropped)) return Either.left(`${text} has more than ${scale} fraction digits (${type})`)
    unscaled = BigInt(kept)
  }
  if (unscaled >= 10n ** BigInt(precision)) return Either.left(`${text} has more than ${precision - scale} integer digits (${type})`)
  return Either.right(sign === "-" ? -unscaled : unscaled)
}

const scalarOf = (type: ScalarType, json: ExactJson): Decoded<Scalar> => {
  const wrong = (what: string) => Either.left(`${shown(json)} is not ${what}`)
  if (json.type === "null") return Either.right(null)
  switch (type.kind) {
    case "short":
    case "integer":
    case "long": {
      if (json.type !== "number" || !integerPattern.test(json.text)) return wrong(`an integer (${type.kind})`)
      const n = BigInt(json.text)
      const [min, max] = integerRanges[type.kind]
      if (n < min || n > max) return Either.left(`${json.text} is out of range for ${type.kind}`)
      return Either.right(type.kind === "long" ? n : Number(n))
    }
    case "decimal":
      if (json.type === "string" && Object.hasOwn(floatSpecials, json.value)) {
        return Either.left(`${json.value} cannot be stored in ${typeName(type)}`)
      }
      if (json.type !== "number") return wrong(`a number (${typeName(type)})`)
      return decimalOf(json.text, type.precision, type.scale)
    case "float":
    case "double":
      if (json.type === "number") return Either.right(Number(json.text))
      if (json.type === "string" && Object.hasOwn(floatSpecials, json.value)) return Either.right(floatSpecials[json.value]!)
      return wrong(`a number (${type.kind})`)
    case "boolean":
      return json.type === "boolean" ? Either.right(json.value) : wrong("a boolean")
    case "string":
      // An unconstrained numeric travels as a JSON number; the lake keeps its exact text.
      if (json.type === "string") return Either.right(json.value)
      if (json.type === "number") return Either.right(json.text)
      return wrong("a string")
    case "date": {
      if (json.type !== "string") return wrong("a date string")
      const m = datePattern.exec(json.value)
      if (m === null) return Either.left(`${shown(json)} is not a date between 0001-01-01 and 9999-12-31`)
      const [y, mo, d] = m.slice(1, 4).map(Number) as [number, number, number]
      if (y < 1 || !isValidDate(y, mo, d)) return Either.left(`${shown(json)} is not a date between 0001-01-01 and 9999-12-31`)
      return Either.right(daysFromCivil(y, mo, d))
    }
    case "timestamp": {
      if (json.type !== "string") return wrong("a timestamp string")
      const m = timestampPattern.exec(json.value)
      const invalid = () => Either.left(`${shown(json)} is not a UTC timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff]Z) in the years 0001-9999`)
      if (m === null) return invalid()
      const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
      if (y < 1 || !isValidDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return invalid()
      const seconds = BigInt(daysFromCivil(y, mo, d)) * 86_400n + BigInt(h * 3600 + mi * 60 + s)
      return Either.right(seconds * 1_000_000n + BigInt((m[7] ?? "").padEnd(6, "0")))
    }
    case "binary":
      if (json.type !== "string" || !base64Pattern.test(json.value)) return wrong("base64")
      return Either.right(new Uint8Array(Buffer.from(json.value, "base64")))
  }
}

const valueOf = (column: Column, json: ExactJson): Decoded<Value> => {
  const type = column.type
  const decoded: Decoded<Value> = type.kind !== "array"
    ? scalarOf(type, json)
    : json.type === "null"
    ? Either.right(null)
    : json.type !== "array"
    ? Either.left(`${shown(json)} is not an array`)
    : Either.all(json.items.map((item) =>
      item.type === "array"
        ? Either.left(`${shown(json)} is a multi-dimensional array (${typeName(type)} holds one dimension)`)
        : scalarOf(type.element, item)
    ))
  return Either.mapLeft(decoded, (problem) => `column ${column.name}: ${problem}`)
}

const membersOf = (json: string): Decoded<ReadonlyArray<readonly [string, ExactJson]>> =>
  Either.flatMap(parseExactJson(json), (parsed) => {
    if (parsed.type !== "object") return Either.left(`the message is not a JSON object: ${shown(parsed)}`)
    const seen = new Set<string>()
    for (const [name] of parsed.members) {
      if (seen.has(name)) return Either.left(`column ${name} appears twice in the message`)
      seen.add(name)
    }
    return Either.right(parsed.members)
  })

/**
 * A row's values in schema order. A column absent from the JSON is null (added to the table after
 * the message was written); a member the schema does not have is an error.
 */
export const decodeRow = (schema: TableSchema, json: string): Either.Either<Row, string> =>
  Either.flatMap(membersOf(json), (members) => {
    const row: Array<Value> = schema.columns.map(() => null)
    for (const [name, value] of members) {
      const index = columnIndex(schema, name)
      if (index < 0) return Either.left(`column ${name} is not in the table's schema`)
      const decoded = valueOf(schema.columns[index]!, value)
      if (Either.isLeft(decoded)) return Either.left(decoded.left)
      row[index] = decoded.right
    }
    return Either.right(row)
  })

const keyColumns = (schema: TableSchema): Decoded<ReadonlyArray<Column>> =>
  Either.all(schema.key.map((name) => {
    const index = columnIndex(schema, name)
    return index < 0 ? Either.left(`key column ${name} is not in the table's schema`) : Either.right(schema.columns[index]!)
  }))

/** A message key's values: the key columns in key order, every one present. */
export const decodeKey = (schema: TableSchema, json: string): Either.Either<Row, string> =>
  Either.flatMap(Either.all([keyColumns(schema), membersOf(json)]), ([columns, members]) => {
    const byName = new Map(members)
    for (const [name] of members) {
      if (!schema.key.includes(name)) return Either.left(`the key has column ${name}, which is not a key column (${schema.key.join(", ")})`)
    }
    return Either.all(columns.map((column) => {
      const value = byName.get(column.name)
      return value === undefined ? Either.left(`the key lacks column ${column.name}`) : valueOf(column, value)
    }))
  })

/**
 * The canonical text of a full row's key (a row in schema order): the same text the producer's
 * keyJson wrote for it, so a change can be matched to the row it changes.
 */
export const keyText = (schema: TableSchema, row: Row): string => {
  const parts = schema.key.map((name) => {
    const index = columnIndex(schema, name)
    if (index < 0) throw new Error(`key column ${name} is not in the table's schema`)
    return `${JSON.stringify(name)}:${valueJson(schema.columns[index]!, row[index] ?? null)}`
  })
  return `{${parts.join(",")}}`
}
