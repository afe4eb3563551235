/**
 * PostgreSQL types to lake types (src/layers/postgres/pgTypes.ts) on hand-made catalog rows: the
 * built-ins by OID, numeric's typmod, enums, domains (nested, with their own typmod), arrays of
 * each, and what is not supported. The real catalog is in test/integration/tableCatalog.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import { columnTypeOf, numericTypmod, type PgTypeRow } from "../../src/layers/postgres/pgTypes.ts"

const row = (oid: number, typname: string, typtype: string, rest: Partial<PgTypeRow> = {}): PgTypeRow => ({
  oid, typname, typtype, typcategory: "U", typelem: 0, typbasetype: 0, typtypmod: -1, ...rest
})

/** numeric(p,s)'s atttypmod. */
const typmod = (p: number, s: number) => ((p << 16) | (s & 0x7ff)) + 4

const catalog = new Map<number, PgTypeRow>([
  [1007, row(1007, "_int4", "b", { typcategory: "A", typelem: 23 })],
  [1231, row(1231, "_numeric", "b", { typcategory: "A", typelem: 1700 })],
  [1186, row(1186, "interval", "b", { typcategory: "T" })],
  [1187, row(1187, "_interval", "b", { typcategory: "A", typelem: 1186 })],
  [600, row(600, "point", "b", { typcategory: "G", typelem: 701 })],
  [22, row(22, "int2vector", "b", { typcategory: "A", typelem: 21 })],
  [90001, row(90001, "mood", "e", { typcategory: "E" })],
  [90002, row(90002, "_mood", "b", { typcategory: "A", typelem: 90001 })],
  [90003, row(90003, "price", "d", { typcategory: "N", typbasetype: 1700, typtypmod: typmod(10, 2) })],
  [90004, row(90004, "dear_price", "d", { typcategory: "N", typbasetype: 90003 })],
  [90005, row(90005, "_price", "b", { typcategory: "A", typelem: 90003 })],
  [90006, row(90006, "int_list", "d", { typcategory: "A", typbasetype: 1007 })],
  [90007, row(90007, "span", "d", { typcategory: "T", typbasetype: 1186 })],
  [90008, row(90008, "pair", "c", { typcategory: "C" })],
  [90009, row(90009, "loop", "d", { typbasetype: 90009 })]
])
const typeOf = (oid: number) => catalog.get(oid)
const map = (oid: number, mod = -1) => columnTypeOf(typeOf, oid, mod)

describe("columnTypeOf", () => {
  it("maps the built-ins by OID", () => {
    const expected: ReadonlyArray<[number, string]> = [
      [21, "short"], [23, "integer"], [20, "long"], [700, "float"], [701, "double"], [16, "boolean"], [25, "string"], [1043, "string"],
      [1042, "string"], [19, "string"], [2950, "string"], [114, "string"], [3802, "string"], [1083, "string"], [1266, "string"],
      [1082, "date"], [1114, "timestamp"], [1184, "timestamp"], [17, "binary"]
    ]
    for (const [oid, kind] of expected) expect(map(oid), `oid ${oid}`).toEqual(Either.right({ kind }))
  })

  it("numeric: decimal(p,s) up to 38 digits, otherwise string", () => {
    expect(numericTypmod(typmod(12, 3))).toEqual({ precision: 12, scale: 3 })
    expect(numericTypmod(typmod(5, -2))).toEqual({ precision: 5, scale: -2 })
    expect(numericTypmod(-1)).toBeUndefined()
    expect(map(1700, typmod(12, 3))).toEqual(Either.right({ kind: "decimal", precision: 12, scale: 3 }))
    expect(map(1700, typmod(38, 0))).toEqual(Either.right({ kind: "decimal", precision: 38, scale: 0 }))
    expect(map(1700, typmod(39, 2))).toEqual(Either.right({ kind: "string" }))
    expect(map(1700, -1)).toEqual(Either.right({ kind: "string" }))
    expect(map(1700, typmod(5, -2))).toEqual(Either.right({ kind: "string" }))
    expect(map(1700, typmod(2, 5))).toEqual(Either.right({ kind: "string" }))
  })

  it("enums are strings; domains map through their base, with the domain's typmod", () => {
    expect(map(90001)).toEqual(Either.right({ kind: "string" }))
    expect(map(90003)).toEqual(Either.right({ kind: "decimal", precision: 10, scale: 2 }))
    expect(map(90004)).toEqual(Either.right({ kind: "decimal", precision: 10, scale: 2 }))
  })

  it("arrays of supported scalars, of enums and domains, and domains over arrays", () => {
    expect(map(1007)).toEqual(Either.right({ kind: "array", element: { kind: "integer" } }))
    expect(map(1231, typmod(5, 2))).toEqual(Either.right({ kind: "array", element: { kind: "decimal", precision: 5, scale: 2 } }))
    expect(map(1231)).toEqual(Either.right({ kind: "array", element: { kind: "string" } }))
    expect(map(90002)).toEqual(Either.right({ kind: "array", element: { kind: "string" } }))
    expect(map(90005)).toEqual(Either.right({ kind: "array", element: { kind: "decimal", precision: 10, scale: 2 } }))
    expect(map(90006)).toEqual(Either.right({ kind: "array", element: { kind: "integer" } }))
  })

  it("everything else is unsupported, with the type's name", () => {
    expect(map(1186)).toEqual(Either.left("type interval is not supported"))
    expect(map(1187)).toEqual(Either.left("type interval is not supported"))
    expect(map(600)).toEqual(Either.left("type point is not supported"))
    expect(map(22)).toEqual(Either.left("type int2vector is not supported"))
    expect(map(90007)).toEqual(Either.left("type interval is not supported"))
    expect(map(90008)).toEqual(Either.left("type pair is not supported"))
    expect(map(12345)).toEqual(Either.left("type oid 12345 is not in the catalog"))
    expect(map(90009)).toEqual(Either.left("type oid 90009: domains nested too deep"))
  })
})
