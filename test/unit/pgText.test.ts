/**
 * PostgreSQL's text output to the topic's JSON (src/layers/postgres/pgText.ts): every rule of the
 * contract, on texts PostgreSQL 15 prints (DateStyle ISO).
 */
import { describe, expect, it } from "@effect/vitest"
import type { Column, ColumnType, TableSchema } from "../../src/domain/columns.ts"
import { keyJson, parseArrayLiteral, pgTextToJson, PgTextError, rowJson } from "../../src/layers/postgres/pgText.ts"

const column = (type: ColumnType, typeOid = 0, name = "c"): Column => ({ name, pgType: "test", typeOid, type, nullable: true })

const short = column({ kind: "short" }, 21)
const integer = column({ kind: "integer" }, 23)
const long = column({ kind: "long" }, 20)
const decimal = column({ kind: "decimal", precision: 10, scale: 2 }, 1700)
const numeric = column({ kind: "string" }, 1700)
const real = column({ kind: "float" }, 700)
const double = column({ kind: "double" }, 701)
const bool = column({ kind: "boolean" }, 16)
const text = column({ kind: "string" }, 25)
const date = column({ kind: "date" }, 1082)
const timestamp = column({ kind: "timestamp" }, 1114)
const timestamptz = column({ kind: "timestamp" }, 1184)
const bytea = column({ kind: "binary" }, 17)
const intArray = column({ kind: "array", element: { kind: "integer" } }, 1007)
const textArray = column({ kind: "array", element: { kind: "string" } }, 1009)
const numericArray = column({ kind: "array", element: { kind: "string" } }, 1231)
const byteaArray = column({ kind: "array", element: { kind: "binary" } }, 1001)
const tsArray = column({ kind: "array", element: { kind: "timestamp" } }, 1185)

describe("pgTextToJson: numbers", () => {
  it("integers: the digits as printed, bigint exactly", () => {
    expect(pgTextToJson(short, "-32768")).toBe("-32768")
    expect(pgTextToJson(integer, "0")).toBe("0")
    expect(pgTextToJson(long, "9223372036854775807")).toBe("9223372036854775807")
    expect(pgTextToJson(long, "-9223372036854775808")).toBe("-9223372036854775808")
    expect(() => pgTextToJson(integer, "1.5")).toThrow(/column c: "1.5" is not PostgreSQL's text of a integer/)
    expect(() => pgTextToJson(long, "")).toThrow(PgTextError)
  })

  it("decimal and unconstrained numeric: the exact text as a JSON number, NaN and infinities as strings", () => {
    for (const value of ["0.00", "-1.50", "99999999.99", "12.30", "-0.000001000", "123456789012345678901234567890.123456789"]) {
      expect(pgTextToJson(decimal, value)).toBe(value)
      expect(pgTextToJson(numeric, value)).toBe(value)
    }
    for (const special of ["NaN", "Infinity", "-Infinity"]) {
      expect(pgTextToJson(decimal, special)).toBe(JSON.stringify(special))
      expect(pgTextToJson(numeric, special)).toBe(JSON.stringify(special))
    }
    expect(() => pgTextToJson(decimal, "1,5")).toThrow(PgTextError)
  })

  it("a string column that is not numeric (a domain over numeric too) travels as a JSON string", () => {
    expect(pgTextToJson(text, "12.30")).toBe('"12.30"')
    expect(pgTextToJson(column({ kind: "string" }, 99999), "12.30")).toBe('"12.30"')
  })

  it("float and double: PostgreSQL's shortest text, specials as strings", () => {
    for (const value of ["1.5", "1e+20", "-0", "0", "1.2345678901234567e-05", "3.4028235e+38", "0.1"]) {
      expect(pgTextToJson(double, value)).toBe(value)
      expect(pgTextToJson(real, value)).toBe(value)
    }
    expect(pgTextToJson(double, "NaN")).toBe('"NaN"')
    expect(pgTextToJson(real, "Infinity")).toBe('"Infinity"')
    expect(pgTextToJson(double, "-Infinity")).toBe('"-Infinity"')
    expect(() => pgTextToJson(double, "inf")).toThrow(PgTextError)
  })
})

describe("pgTextToJson: other scalars", () => {
  it("boolean", () => {
    expect(pgTextToJson(bool, "t")).toBe("true")
    expect(pgTextToJson(bool, "f")).toBe("false")
    expect(() => pgTextToJson(bool, "true")).toThrow(PgTextError)
  })

  it("strings exactly: unicode, emoji, control characters, quotes, empty vs NULL, json as text", () => {
    const samples = ["", " padded  ", "é 中文 🍕 👩‍👩‍👧", "tab\tnl\ncr\r\u0001\u001f", 'q"uote \\ back', "NULL", '{"a": [1, 2.50]}']
    for (const sample of samples) {
      const json = pgTextToJson(text, sample)
      expect(JSON.parse(json)).toBe(sample)
    }
    expect(pgTextToJson(text, "")).toBe('""')
    expect(pgTextToJson(text, null)).toBe("null")
    expect(pgTextToJson(column({ kind: "string" }, 3802), '{"a": 1.0}')).toBe(JSON.stringify('{"a": 1.0}'))
  })

  it("date: the text, BC and infinity kept", () => {
    expect(pgTextToJson(date, "2025-01-15")).toBe('"2025-01-15"')
    expect(pgTextToJson(date, "0044-03-15 BC")).toBe('"0044-03-15 BC"')
    expect(pgTextToJson(date, "infinity")).toBe('"infinity"')
    expect(pgTextToJson(date, "-infinity")).toBe('"-infinity"')
    expect(pgTextToJson(date, "10000-01-01")).toBe('"10000-01-01"')
    expect(() => pgTextToJson(date, "01/15/2025")).toThrow(PgTextError)
  })

  it("timestamp without time zone: read as UTC, fraction digits as printed", () => {
    expect(pgTextToJson(timestamp, "2025-01-15 12:24:00")).toBe('"2025-01-15T12:24:00Z"')
    expect(pgTextToJson(timestamp, "2025-01-15 12:24:00.5")).toBe('"2025-01-15T12:24:00.5Z"')
    expect(pgTextToJson(timestamp, "0001-01-01 00:00:00.000001")).toBe('"0001-01-01T00:00:00.000001Z"')
    expect(pgTextToJson(timestamp, "infinity")).toBe('"infinity"')
    expect(pgTextToJson(timestamp, "0044-03-15 10:00:00 BC")).toBe('"0044-03-15 10:00:00 BC"')
    expect(() => pgTextToJson(timestamp, "Wed Jan 15 12:24:00 2025")).toThrow(PgTextError)
  })

  it("timestamptz: converted from the printed offset to UTC", () => {
    expect(pgTextToJson(timestamptz, "2025-01-15 12:24:00.5+05:30")).toBe('"2025-01-15T06:54:00.5Z"')
    expect(pgTextToJson(timestamptz, "2025-01-15 02:00:00+05:30")).toBe('"2025-01-14T20:30:00Z"')
    expect(pgTextToJson(timestamptz, "2025-12-31 20:00:00-08")).toBe('"2026-01-01T04:00:00Z"')
    expect(pgTextToJson(timestamptz, "1900-01-01 00:00:00+05:53:28")).toBe('"1899-12-31T18:06:32Z"')
    expect(pgTextToJson(timestamptz, "2024-02-29 23:59:59.999999-00:30")).toBe('"2024-03-01T00:29:59.999999Z"')
    expect(pgTextToJson(timestamptz, "2025-06-01 00:00:00+00")).toBe('"2025-06-01T00:00:00Z"')
    expect(pgTextToJson(timestamptz, "-infinity")).toBe('"-infinity"')
  })

  it("timestamptz printed as BC in the session's zone but AD in UTC is converted; earlier instants keep the text", () => {
    expect(pgTextToJson(timestamptz, "0001-12-31 16:07:02-07:52:58 BC")).toBe('"0001-01-01T00:00:00Z"')
    expect(pgTextToJson(timestamptz, "0001-12-31 16:07:02.25-07:52:58 BC")).toBe('"0001-01-01T00:00:00.25Z"')
    expect(pgTextToJson(timestamptz, "0001-12-31 16:07:01-07:52:58 BC")).toBe('"0001-12-31 16:07:01-07:52:58 BC"')
    expect(pgTextToJson(timestamptz, "0044-03-15 10:00:00+00 BC")).toBe('"0044-03-15 10:00:00+00 BC"')
  })

  it("bytea: hex and escape output to base64", () => {
    expect(pgTextToJson(bytea, "\\x")).toBe('""')
    expect(pgTextToJson(bytea, "\\x0a0bff")).toBe(JSON.stringify(Buffer.from([10, 11, 255]).toString("base64")))
    expect(pgTextToJson(bytea, "a\\000\\\\\\377")).toBe(JSON.stringify(Buffer.from([97, 0, 92, 255]).toString("base64")))
    expect(pgTextToJson(bytea, "")).toBe('""')
    expect(() => pgTextToJson(bytea, "\\x0")).toThrow(PgTextError)
    expect(() => pgTextToJson(bytea, "\\9")).toThrow(PgTextError)
  })
})

describe("pgTextToJson: arrays", () => {
  it("elements by the element's rule, NULL as null, a quoted NULL as the string", () => {
    expect(pgTextToJson(intArray, "{1,2,NULL}")).toBe("[1,2,null]")
    expect(pgTextToJson(intArray, "{}")).toBe("[]")
    expect(pgTextToJson(textArray, '{"a,b","c\\"d",NULL,"NULL","back\\\\slash",plain,""}')).toBe(
      JSON.stringify(["a,b", 'c"d', null, "NULL", "back\\slash", "plain", ""])
    )
    expect(pgTextToJson(textArray, '{"🍕 pizza","{x}"}')).toBe(JSON.stringify(["🍕 pizza", "{x}"]))
    expect(pgTextToJson(numericArray, "{1.50,NaN,-0.001}")).toBe('[1.50,"NaN",-0.001]')
    expect(pgTextToJson(byteaArray, '{"\\\\x0a0b","\\\\x"}')).toBe(JSON.stringify([Buffer.from([10, 11]).toString("base64"), ""]))
    expect(pgTextToJson(tsArray, '{"2025-01-15 12:24:00+05:30",NULL}')).toBe('["2025-01-15T06:54:00Z",null]')
  })

  it("bounds prefixes and nested dimensions", () => {
    expect(pgTextToJson(intArray, "[0:2]={7,8,9}")).toBe("[7,8,9]")
    expect(pgTextToJson(intArray, "{{1,2},{3,4}}")).toBe("[[1,2],[3,4]]")
    expect(pgTextToJson(intArray, "[0:1][1:2]={{1,NULL},{3,4}}")).toBe("[[1,null],[3,4]]")
  })

  it("malformed literals are errors naming the column", () => {
    for (const bad of ["1,2", "{1,2", "{1,,2}", '{"a}', "{1}x", "{a{b}", ""]) {
      expect(() => pgTextToJson(column({ kind: "array", element: { kind: "string" } }, 1009, "tags"), bad)).toThrow(/column tags/)
    }
    expect(() => pgTextToJson(intArray, "{1,x}")).toThrow(PgTextError)
  })

  it("parseArrayLiteral keeps element text", () => {
    expect(parseArrayLiteral('{ a , "b c" ,null}')).toEqual(["a", "b c", null])
  })
})

describe("rowJson and keyJson", () => {
  const schema: TableSchema = {
    columns: [
      column({ kind: "long" }, 20, "id"),
      column({ kind: "string" }, 25, "region"),
      column({ kind: "decimal", precision: 10, scale: 2 }, 1700, "price"),
      column({ kind: "array", element: { kind: "string" } }, 1009, "tags")
    ],
    key: ["region", "id"]
  }
  const tuple = { tags: "{a,NULL}", price: "12.30", region: "né", id: "9223372036854775807" }

  it("writes every column in schema order and the key in key order", () => {
    expect(rowJson(schema, tuple)).toBe('{"id":9223372036854775807,"region":"né","price":12.30,"tags":["a",null]}')
    expect(keyJson(schema, tuple)).toBe('{"region":"né","id":9223372036854775807}')
    expect(rowJson(schema, { ...tuple, price: null, tags: null })).toBe('{"id":9223372036854775807,"region":"né","price":null,"tags":null}')
  })

  it("a column absent from the tuple (an unchanged TOAST value) is an error naming it", () => {
    const { tags: _, ...withoutTags } = tuple
    let error: unknown
    try {
      rowJson(schema, withoutTags)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(PgTextError)
    expect((error as PgTextError).unchanged).toBe(true)
    expect((error as PgTextError).message).toMatch(/column tags: .*TOAST/)
    expect(() => rowJson(schema, { ...tuple, price: 12.3 })).toThrow(/column price: expected PostgreSQL's text, got number/)
  })
})
