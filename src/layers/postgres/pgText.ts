import { Data } from "effect"
import { civilFromDays, dateText, daysFromCivil } from "../../domain/civilDate.ts"
import type { Column, ScalarType, TableSchema } from "../../domain/columns.ts"
import { carriesNumber, jsonNumberPattern } from "../../domain/valueJson.ts"

/**
 * PostgreSQL's text output of a value (what pgoutput sends, and what the snapshot reads with every
 * type parser returning text; both connections use DateStyle ISO) to the JSON fragment the topic
 * carries. The contract, per lake type (src/domain/columns.ts):
 *
 * - short, integer, long: a JSON number, the digits as PostgreSQL printed them.
 * - decimal, and numeric without a precision (the lake's string): a JSON number with PostgreSQL's
 *   exact text (`12.30`, `-0.000001000`), never through a float. `NaN`, `Infinity`, `-Infinity`:
 *   JSON strings. A domain over unconstrained numeric goes as a JSON string (only the numeric OIDs
 *   mark a column as numeric); the consumer reads both to the same string.
 * - float, double: a JSON number with PostgreSQL's text (`1.5`, `1e+20`, `-0`); NaN and
 *   ±Infinity as JSON strings.
 * - boolean: `t`/`f` to true/false.
 * - string (text, varchar, char, name, uuid, enums, json, jsonb, time, timetz): a JSON string of
 *   the text exactly (json stays a string holding the JSON text).
 * - date: the `YYYY-MM-DD` text as a JSON string. BC dates, years past 9999 and `infinity` keep
 *   PostgreSQL's text; the consumer rejects them.
 * - timestamp: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, the fraction digits as printed. A timestamp
 *   without time zone is read as UTC; a timestamptz (printed in the session's TimeZone with an
 *   offset: `+05:30`, `+05:53:28`, `-08`) is converted to its UTC instant, also when the zone
 *   prints it as BC. `infinity`, `-infinity`, BC timestamps without time zone and instants before
 *   the year 1 keep PostgreSQL's text. Years past 9999 are converted; the consumer rejects them.
 * - binary: bytea's hex output (`\x0a0b`) or escape output (`\012\\`) as base64 in a JSON string.
 * - array: the array literal (`{1,NULL}`, `{"a,b","NULL"}`, `[0:2]={...}`, `{{1,2},{3,4}}`) as a
 *   JSON array of its elements' fragments, NULL as null (a quoted "NULL" is the string).
 *   Multi-dimensional values become nested arrays; the consumer rejects them.
 * - SQL NULL: null.
 */

/**
 * A value that is not the output PostgreSQL gives for its column's type (a bug: a wrong DateStyle,
 * a type parser left on), or a column missing from a row (`unchanged`: an unchanged TOAST value
 * under REPLICA IDENTITY DEFAULT).
 */
export class PgTextError extends Data.TaggedError("PgTextError")<{
  readonly column: string
  readonly problem: string
  readonly unchanged: boolean
}> {
  override get message() {
    return `column ${this.column}: ${this.problem}`
  }
}

const malformed = (column: string, type: string, text: string) =>
  new PgTextError({ column, problem: `${JSON.stringify(text)} is not PostgreSQL's text of a ${type}`, unchanged: false })

const specialNumbers: ReadonlySet<string> = new Set(["NaN", "Infinity", "-Infinity"])
const integerPattern = /^-?\d+$/

const timestampPattern =
  /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$/
const datePattern = /^\d{4,}-\d{2}-\d{2}( BC)?$/
const infinityPattern = /^-?infinity$/

const pad2 = (n: number) => String(n).padStart(2, "0")

/**
 * ISO timestamp text to the UTC form; an offset, when printed, is subtracted. A timestamptz printed
 * as BC in the session's zone may still be an AD instant (0001-01-01 00:00:00+00 prints as
 * `0001-12-31 16:07:02-07:52:58 BC` in America/Los_Angeles): it is converted like any other, so the
 * JSON does not depend on the zone. Instants before year 1 keep PostgreSQL's text.
 */
const timestampJson = (column: string, text: string): string => {
  if (infinityPattern.test(text)) return JSON.stringify(text)
  const m = timestampPattern.exec(text)
  if (m === null) throw malformed(column, "timestamp", text)
  const bc = m[12] !== undefined
  const fraction = m[7] ?? ""
  if (m[8] === undefined) return JSON.stringify(bc ? text : `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${fraction}Z`)
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number]
  const offset = (m[8] === "-" ? -1 : 1) * (Number(m[9]) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0))
  // 1 BC is the astronomical year 0.
  const total = daysFromCivil(bc ? 1 - year : year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
  const days = Math.floor(total / 86_400)
  if (civilFromDays(days).year < 1) return JSON.stringify(text)
  const ofDay = total - days * 86_400
  const time = `${pad2(Math.floor(ofDay / 3600))}:${pad2(Math.floor(ofDay / 60) % 60)}:${pad2(ofDay % 60)}`
  return JSON.stringify(`${dateText(days)}T${time}${fraction}Z`)
}

/** bytea's escape output: printable ASCII as itself, `\\` for a backslash, `\nnn` octal for the rest. */
const escapeBytes = (column: string, text: string): Buffer => {
  const bytes: Array<number> = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c > 0x7e) throw malformed(column, "bytea", text)
    if (c !== 0x5c) {
      bytes.push(c)
    } else if (text[i + 1] === "\\") {
      bytes.push(0x5c)
      i += 1
    } else if (/^[0-3][0-7]{2}$/.test(text.slice(i + 1, i + 4))) {
      bytes.push(parseInt(text.slice(i + 1, i + 4), 8))
      i += 3
    } else {
      throw malformed(column, "bytea", text)
    }
  }
  return Buffer.from(bytes)
}

const byteaJson = (column: string, text: string): string => {
  if (text.startsWith("\\x")) {
    if (!/^\\x(?:[0-9a-fA-F]{2})*$/.test(text)) throw malformed(column, "bytea", text)
    return JSON.stringify(Buffer.from(text.slice(2), "hex").toString("base64"))
  }
  return JSON.stringify(escapeBytes(column, text).toString("base64"))
}

const scalarJson = (column: string, type: ScalarType, number: boolean, text: string): string => {
  switch (type.kind) {
    case "short":
    case "integer":
    case "long":
      if (!integerPattern.test(text) || !jsonNumberPattern.test(text)) throw malformed(column, type.kind, text)
      return text
    case "decimal":
    case "float":
    case "double":
      if (specialNumbers.has(text)) return JSON.stringify(text)
      if (!jsonNumberPattern.test(text)) throw malformed(column, type.kind, text)
      return text
    case "boolean":
      if (text === "t") return "true"
      if (text === "f") return "false"
      throw malformed(column, "boolean", text)
    case "string":
      return number && jsonNumberPattern.test(text) ? text : JSON.stringify(text)
    case "date":
      if (!datePattern.test(text) && !infinityPattern.test(text)) throw malformed(column, "date", text)
      return JSON.stringify(text)
    case "timestamp":
      return timestampJson(column, text)
    case "binary":
      return byteaJson(column, text)
  }
}

type ArrayNode = string | null | ReadonlyArray<ArrayNode>

/**
 * An array literal as array_out prints it: `{a,"b c",NULL}`, nested braces per dimension, an
 * optional `[lo:hi]...=` bounds prefix when a lower bound is not 1. Elements are quoted when they
 * hold a delimiter, brace, quote, backslash or space, or spell NULL; inside quotes `\` escapes.
 */
export const parseArrayLiteral = (text: string): ReadonlyArray<ArrayNode> => {
  let i = 0
  const fail = (why: string): never => {
    throw new Error(`not an array literal (${why} at ${i}): ${JSON.stringify(text)}`)
  }
  const bounds = /^(?:\[-?\d+:-?\d+\])+=/.exec(text)
  if (bounds !== null) i = bounds[0].length
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++
  }
  const level = (): ReadonlyArray<ArrayNode> => {
    if (text[i] !== "{") fail("expected {")
    i++
    const items: Array<ArrayNode> = []
    skipSpace()
    if (text[i] === "}") {
      i++
      return items
    }
    while (true) {
      skipSpace()
      if (text[i] === "{") {
        items.push(level())
      } else if (text[i] === "\"") {
        i++
        let value = ""
        while (true) {
          if (i >= text.length) fail("unterminated quote")
          const c = text[i]!
          if (c === "\"") break
          if (c === "\\") {
            i++
            if (i >= text.length) fail("dangling backslash")
          }
          value += text[i]
          i++
        }
        i++
        items.push(value)
      } else {
        let value = ""
        let escaped = false
        while (i < text.length && text[i] !== "," && text[i] !== "}") {
          if (text[i] === "{" || text[i] === "\"") fail("unexpected character")
          if (text[i] === "\\") {
            i++
            escaped = true
            if (i >= text.length) fail("dangling backslash")
          }
          value += text[i]
          i++
        }
        value = escaped ? value : value.trim()
        if (value === "") fail("empty element")
        items.push(!escaped && value.toUpperCase() === "NULL" ? null : value)
      }
      skipSpace()
      if (text[i] === ",") {
        i++
        continue
      }
      if (text[i] === "}") {
        i++
        return items
      }
      fail("expected , or }")
    }
  }
  const top = level()
  if (i !== text.length) fail("trailing text")
  return top
}

/**
 * The JSON fragment of `text`, PostgreSQL's output of a value of `column` (null: SQL NULL). Throws
 * a PgTextError for text that is not that type's output.
 */
export const pgTextToJson = (column: Column, text: string | null): string => {
  if (text === null) return "null"
  const type = column.type
  const number = carriesNumber(column)
  if (type.kind !== "array") return scalarJson(column.name, type, number, text)
  let parsed: ReadonlyArray<ArrayNode>
  try {
    parsed = parseArrayLiteral(text)
  } catch (cause) {
    throw new PgTextError({ column: column.name, problem: (cause as Error).message, unchanged: false })
  }
  const node = (n: ArrayNode): string =>
    n === null ? "null" : typeof n === "string" ? scalarJson(column.name, type.element, number, n) : `[${n.map(node).join(",")}]`
  return node(parsed)
}

const fieldJson = (column: Column, tuple: Readonly<Record<string, unknown>>): string => {
  const value = tuple[column.name]
  if (value === undefined) {
    throw new PgTextError({ column: column.name, problem: "the row arrived without it (an unchanged TOAST value?)", unchanged: true })
  }
  if (value !== null && typeof value !== "string") {
    throw new PgTextError({ column: column.name, problem: `expected PostgreSQL's text, got ${typeof value} (a type parser left on?)`, unchanged: false })
  }
  return pgTextToJson(column, value)
}

/** `{"col":...}` with every column of the schema, in its order, from a tuple of PostgreSQL text. */
export const rowJson = (schema: TableSchema, tuple: Readonly<Record<string, unknown>>): string =>
  `{${schema.columns.map((column) => `${JSON.stringify(column.name)}:${fieldJson(column, tuple)}`).join(",")}}`

/** `{"k1":...,"k2":...}`: the key columns in key order, the message key of the row's changes. */
export const keyJson = (schema: TableSchema, tuple: Readonly<Record<string, unknown>>): string =>
  `{${
    schema.key.map((name) => {
      const column = schema.columns.find((c) => c.name === name)
      if (column === undefined) throw new PgTextError({ column: name, problem: "the key column is not in the schema", unchanged: false })
      return `${JSON.stringify(name)}:${fieldJson(column, tuple)}`
    }).join(",")
  }}`
