/**
 * The consumer's side of the codec (src/domain/rowDecode.ts): the topic's JSON to values in memory
 * as src/domain/columns.ts represents them, the dead-letter reasons, and keys that match.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { Column, ColumnType, Row, ScalarType, TableSchema } from "../../src/domain/columns.ts"
import { decodeKey, decodeRow, keyText } from "../../src/domain/rowDecode.ts"
import { floatText } from "../../src/domain/valueJson.ts"
import { keyJson, rowJson } from "../../src/layers/postgres/pgText.ts"

const column = (name: string, type: ColumnType, typeOid = 0): Column => ({ name, pgType: "test", typeOid, type, nullable: true })
const one = (type: ColumnType, typeOid = 0): TableSchema => ({ columns: [column("c", type, typeOid)], key: ["c"] })

const right = (schema: TableSchema, json: string): Row => {
  const result = decodeRow(schema, json)
  if (Either.isLeft(result)) throw new Error(result.left)
  return result.right
}
const left = (schema: TableSchema, json: string): string => {
  const result = decodeRow(schema, json)
  if (Either.isRight(result)) throw new Error(`decoded ${json}`)
  return result.left
}
const value = (type: ColumnType, json: string, typeOid = 0) => right(one(type, typeOid), `{"c":${json}}`)[0]
const reason = (type: ColumnType, json: string) => left(one(type), `{"c":${json}}`)

const dec = (precision: number, scale: number): ScalarType => ({ kind: "decimal", precision, scale })

describe("decodeRow: numbers", () => {
  it("integers by range; long as bigint exactly", () => {
    expect(value({ kind: "short" }, "-32768")).toBe(-32768)
    expect(value({ kind: "integer" }, "2147483647")).toBe(2147483647)
    expect(value({ kind: "long" }, "9223372036854775807")).toBe(9223372036854775807n)
    expect(value({ kind: "long" }, "-9223372036854775808")).toBe(-9223372036854775808n)
    expect(reason({ kind: "short" }, "32768")).toBe("column c: 32768 is out of range for short")
    expect(reason({ kind: "long" }, "9223372036854775808")).toMatch(/out of range for long/)
    expect(reason({ kind: "integer" }, "1.5")).toBe("column c: 1.5 is not an integer (integer)")
    expect(reason({ kind: "integer" }, '"1"')).toBe('column c: "1" is not an integer (integer)')
  })

  it("decimal: the unscaled value at the column's scale, exactly", () => {
    expect(value(dec(5, 2), "12.3")).toBe(1230n)
    expect(value(dec(5, 2), "12.30")).toBe(1230n)
    expect(value(dec(10, 2), "0.00")).toBe(0n)
    expect(value(dec(10, 2), "-1.50")).toBe(-150n)
    expect(value(dec(10, 2), "99999999.99")).toBe(9999999999n)
    expect(value(dec(10, 2), "7")).toBe(700n)
    expect(value(dec(38, 0), "99999999999999999999999999999999999999")).toBe(10n ** 38n - 1n)
    expect(value(dec(38, 10), "-1234567890123456789012345678.0123456789")).toBe(-12345678901234567890123456780123456789n)
    expect(value(dec(10, 2), "1.5e2")).toBe(15000n)
    // Zeros beyond the scale lose nothing.
    expect(value(dec(10, 2), "12.300")).toBe(1230n)
  })

  it("decimal: lost digits, overflow, NaN and infinities are dead-letter reasons", () => {
    expect(left({ columns: [column("price", dec(10, 2))], key: ["price"] }, '{"price":12.345}')).toBe(
      "column price: 12.345 has more than 2 fraction digits (decimal(10,2))"
    )
    expect(reason(dec(10, 2), "100000000.00")).toBe("column c: 100000000.00 has more than 8 integer digits (decimal(10,2))")
    expect(reason(dec(5, 2), "1e10")).toMatch(/more than 3 integer digits/)
    expect(reason(dec(5, 2), "1e100000")).toMatch(/more than 3 integer digits/)
    expect(reason(dec(10, 2), '"NaN"')).toBe("column c: NaN cannot be stored in decimal(10,2)")
    expect(reason(dec(10, 2), '"-Infinity"')).toMatch(/-Infinity cannot be stored/)
    expect(reason(dec(10, 2), '"12.30"')).toMatch(/is not a number/)
    expect(reason(dec(10, 2), '"toString"')).toBe('column c: "toString" is not a number (decimal(10,2))')
  })

  it("float and double: numbers, -0, and NaN/Infinity from strings", () => {
    expect(value({ kind: "double" }, "1.5")).toBe(1.5)
    expect(value({ kind: "double" }, "1e+20")).toBe(1e20)
    expect(Object.is(value({ kind: "double" }, "-0"), -0)).toBe(true)
    expect(value({ kind: "float" }, '"NaN"')).toBeNaN()
    expect(value({ kind: "double" }, '"Infinity"')).toBe(Infinity)
    expect(value({ kind: "double" }, '"-Infinity"')).toBe(-Infinity)
    expect(reason({ kind: "double" }, '"inf"')).toMatch(/is not a number \(double\)/)
    expect(reason({ kind: "double" }, '"toString"')).toMatch(/is not a number/)
  })

  it("an unconstrained numeric (string in the lake) keeps the JSON number's exact text", () => {
    expect(value({ kind: "string" }, "123456789012345678901234567890.000001000", 1700)).toBe("123456789012345678901234567890.000001000")
    expect(value({ kind: "string" }, '"NaN"', 1700)).toBe("NaN")
  })
})

describe("decodeRow: other types", () => {
  it("boolean and strings (unicode, emoji, control characters, empty vs null)", () => {
    expect(value({ kind: "boolean" }, "true")).toBe(true)
    expect(reason({ kind: "boolean" }, '"t"')).toBe('column c: "t" is not a boolean')
    for (const s of ["", "é 中文 🍕 👩‍👩‍👧", "tab\t\u0001\u001f", "NULL", 'q"\\']) expect(value({ kind: "string" }, JSON.stringify(s))).toBe(s)
    expect(value({ kind: "string" }, "null")).toBeNull()
    expect(reason({ kind: "string" }, "true")).toBe("column c: true is not a string")
  })

  it("date: days since 1970-01-01, years 0001-9999 only", () => {
    expect(value({ kind: "date" }, '"1970-01-01"')).toBe(0)
    expect(value({ kind: "date" }, '"1969-12-31"')).toBe(-1)
    expect(value({ kind: "date" }, '"2024-02-29"')).toBe(19782)
    expect(value({ kind: "date" }, '"0001-01-01"')).toBe(-719162)
    expect(value({ kind: "date" }, '"9999-12-31"')).toBe(2932896)
    for (const bad of ['"0044-03-15 BC"', '"infinity"', '"10000-01-01"', '"0000-01-01"', '"2023-02-29"', '"2025-13-01"', "20250101"]) {
      expect(reason({ kind: "date" }, bad)).toMatch(/^column c: .* not a date/)
    }
  })

  it("timestamp: ISO UTC to microseconds, years 0001-9999", () => {
    expect(value({ kind: "timestamp" }, '"1970-01-01T00:00:00Z"')).toBe(0n)
    expect(value({ kind: "timestamp" }, '"2025-01-15T12:24:00.5Z"')).toBe(1736943840500000n)
    expect(value({ kind: "timestamp" }, '"1969-12-31T23:59:59.999999Z"')).toBe(-1n)
    expect(value({ kind: "timestamp" }, '"0001-01-01T00:00:00Z"')).toBe(-62135596800000000n)
    expect(value({ kind: "timestamp" }, '"9999-12-31T23:59:59.999999Z"')).toBe(253402300799999999n)
    for (const bad of ['"infinity"', '"2025-01-15 12:24:00"', '"2025-01-15T12:24:00+05:30"', '"10000-01-01T00:00:00Z"', '"2025-01-15T24:00:00Z"', '"2025-01-15T12:24:00.1234567Z"']) {
      expect(reason({ kind: "timestamp" }, bad)).toMatch(/is not a UTC timestamp/)
    }
  })

  it("binary: base64, empty included; anything else rejected", () => {
    expect(value({ kind: "binary" }, '""')).toEqual(new Uint8Array())
    expect(value({ kind: "binary" }, JSON.stringify(Buffer.from([0, 10, 255]).toString("base64")))).toEqual(new Uint8Array([0, 10, 255]))
    expect(reason({ kind: "binary" }, '"abc"')).toMatch(/is not base64/)
    expect(reason({ kind: "binary" }, '"\\\\x0a"')).toMatch(/is not base64/)
  })

  it("arrays: elements by the element rule, nulls kept, nested arrays rejected", () => {
    expect(value({ kind: "array", element: { kind: "long" } }, "[1,null,9223372036854775807]")).toEqual([1n, null, 9223372036854775807n])
    expect(value({ kind: "array", element: { kind: "string" } }, '["NULL",null,""]')).toEqual(["NULL", null, ""])
    expect(value({ kind: "array", element: dec(4, 1) }, "[]")).toEqual([])
    expect(reason({ kind: "array", element: { kind: "integer" } }, "[[1,2],[3,4]]")).toMatch(/multi-dimensional array \(array<integer> holds one dimension\)/)
    expect(reason({ kind: "array", element: dec(4, 1) }, "[1.25]")).toMatch(/1.25 has more than 1 fraction digits/)
    expect(reason({ kind: "array", element: { kind: "integer" } }, "1")).toBe("column c: 1 is not an array")
  })
})

describe("decodeRow: the message as a whole", () => {
  const schema: TableSchema = {
    columns: [column("id", { kind: "long" }), column("name", { kind: "string" }), column("added", { kind: "integer" })],
    key: ["id"]
  }

  it("a column missing from the message is null (added after it was written)", () => {
    expect(right(schema, '{"id":1,"name":"a"}')).toEqual([1n, "a", null])
  })

  it("an unknown member, a duplicate, invalid JSON or a non-object are errors", () => {
    expect(left(schema, '{"id":1,"dropped":2}')).toBe("column dropped is not in the table's schema")
    expect(left(schema, '{"id":1,"id":2}')).toBe("column id appears twice in the message")
    expect(left(schema, '{"id":1,')).toMatch(/invalid JSON at position 8/)
    expect(left(schema, "[1]")).toBe("the message is not a JSON object: [1]")
  })

  it("a long value in a reason is shortened", () => {
    expect(left(schema, `{"added":"${"x".repeat(500)}"}`).length).toBeLessThan(150)
  })
})

describe("keys", () => {
  const schema: TableSchema = {
    columns: [
      column("region", { kind: "string" }, 25),
      column("price", dec(10, 2), 1700),
      column("id", { kind: "long" }, 20),
      column("day", { kind: "date" }, 1082),
      column("at", { kind: "timestamp" }, 1184),
      column("ratio", { kind: "double" }, 701),
      column("weight", { kind: "float" }, 700),
      column("blob", { kind: "binary" }, 17),
      column("n", { kind: "string" }, 1700),
      column("ok", { kind: "boolean" }, 16),
      column("tags", { kind: "array", element: { kind: "integer" } }, 1007),
      column("note", { kind: "string" }, 25)
    ],
    key: ["id", "region", "price", "day", "at", "ratio", "weight", "blob", "n", "ok", "tags"]
  }
  const tuples: ReadonlyArray<Record<string, string | null>> = [
    {
      region: "né 🍕 \"q\"", price: "-0.05", id: "9223372036854775807", day: "2024-02-29", at: "2025-01-15 12:24:00.5+05:30",
      ratio: "1e+20", weight: "1.1", blob: "\\x00ff", n: "-0.000001000", ok: "t", tags: "{1,NULL}", note: null
    },
    {
      region: "", price: "99999999.99", id: "-1", day: "0001-01-01", at: "1969-12-31 23:59:59.999999-08",
      ratio: "-0", weight: "3.4028235e+38", blob: "\\x", n: "NaN", ok: "f", tags: "{}", note: "x"
    },
    {
      region: "x", price: "0.00", id: "0", day: "9999-12-31", at: "2000-01-01 00:00:00+00",
      ratio: "1.2345678901234568e-05", weight: "1e-05", blob: "\\x0a", n: "12", ok: "t", tags: "{-2147483648}", note: ""
    },
    {
      region: "y", price: "12.30", id: "5", day: "1970-01-01", at: "2025-06-01 10:00:00.000001+02",
      ratio: "123456789012345", weight: "123456", blob: "\\xdeadbeef", n: "1e-05", ok: "f", tags: null, note: "z"
    },
    {
      region: "z", price: "1.00", id: "6", day: "2000-02-29", at: "2025-06-01 10:00:00+02",
      ratio: "1e+15", weight: "1e+06", blob: "\\x01", n: "0", ok: "t", tags: "{7}", note: "w"
    },
    {
      region: "w", price: "2.00", id: "7", day: "2000-03-01", at: "2025-06-01 10:00:00+02",
      ratio: "0.0001", weight: "0.0001", blob: "\\x02", n: "1", ok: "t", tags: "{8}", note: "v"
    },
    {
      region: "w", price: "2.00", id: "7", day: "2000-03-01", at: "2025-06-01 10:00:00+02",
      ratio: "NaN", weight: "-Infinity", blob: "\\x02", n: "1", ok: "t", tags: "{8}", note: "v"
    }
  ]

  it("keyText of the decoded row equals keyJson of the tuple, character for character", () => {
    for (const tuple of tuples) {
      const row = right(schema, rowJson(schema, tuple))
      expect(keyText(schema, row)).toBe(keyJson(schema, tuple))
    }
  })

  it("decodeKey gives the key's values in key order", () => {
    const tuple = tuples[0]!
    const key = decodeKey(schema, keyJson(schema, tuple))
    expect(Either.isRight(key)).toBe(true)
    const row = right(schema, rowJson(schema, tuple))
    const expected = schema.key.map((name) => row[schema.columns.findIndex((c) => c.name === name)])
    expect(Either.getOrThrow(key)).toEqual(expected)
  })

  it("decodeKey rejects a key without a key column or with another column", () => {
    const small: TableSchema = { columns: [column("a", { kind: "integer" }), column("b", { kind: "string" })], key: ["b", "a"] }
    expect(decodeKey(small, '{"b":"x","a":1}')).toEqual(Either.right(["x", 1]))
    expect(decodeKey(small, '{"b":"x"}')).toEqual(Either.left("the key lacks column a"))
    expect(decodeKey(small, '{"b":"x","a":1,"c":2}')).toEqual(Either.left("the key has column c, which is not a key column (b, a)"))
    expect(decodeKey(small, '{"b":"x","a":"1"}')).toEqual(Either.left('column a: "1" is not an integer (integer)'))
  })

  it("floatText prints what PostgreSQL prints for float8 and float4", () => {
    const doubles: ReadonlyArray<[number, string]> = [
      [1.5, "1.5"], [1e20, "1e+20"], [-0, "-0"], [0, "0"], [0.1, "0.1"], [1e-5, "1e-05"], [0.0001, "0.0001"],
      [123456789012345, "123456789012345"], [1e15, "1e+15"], [1.2345678901234568e-5, "1.2345678901234568e-05"],
      [1e100, "1e+100"], [5e-324, "5e-324"],
      // JavaScript's shortest form lies exactly halfway to the next double; PostgreSQL's Ryu does not accept it.
      [5.5640409780412403e17, "5.5640409780412403e+17"], [1.7976931348623157e308, "1.7976931348623157e+308"], [-2.5, "-2.5"], [100, "100"]
    ]
    for (const [v, text] of doubles) expect(floatText(v, false)).toBe(text)
    const singles: ReadonlyArray<[number, string]> = [
      [1.1, "1.1"], [Math.fround(1.1), "1.1"], [123456, "123456"], [1e6, "1e+06"], [3.4028234663852886e38, "3.4028235e+38"],
      [1e-5, "1e-05"], [0.0001, "0.0001"], [Math.fround(0.3), "0.3"], [16777217, "1.6777216e+07"],
      // A tie between two shortest candidates goes to the even one, as Ryu does.
      [442324.625, "442324.62"], [-442324.625, "-442324.62"], [442324.875, "442324.88"]
    ]
    for (const [v, text] of singles) expect(floatText(v, true)).toBe(text)
  })
})
