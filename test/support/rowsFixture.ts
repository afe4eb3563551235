/**
 * A captured table with a column of every lake type (issue 19), and rows at the edges of each type:
 * for the table format's unit test and the Spark/DuckDB check of the files it writes.
 */
import type { Column, ColumnType, Row, Scalar, ScalarType, TableSchema, Value } from "../../src/domain/columns.ts"

const column = (name: string, pgType: string, typeOid: number, type: ColumnType, nullable = true): Column => ({
  name,
  pgType,
  typeOid,
  type,
  nullable
})

const decimal = (precision: number, scale: number): ScalarType => ({ kind: "decimal", precision, scale })

export const everyTypeSchema: TableSchema = {
  columns: [
    column("id", "bigint", 20, { kind: "long" }, false),
    column("small", "smallint", 21, { kind: "short" }),
    column("qty", "integer", 23, { kind: "integer" }),
    column("price", "numeric(12,3)", 1700, decimal(12, 3)),
    column("tiny_dec", "numeric(5,2)", 1700, decimal(5, 2)),
    column("big_dec", "numeric(38,10)", 1700, decimal(38, 10)),
    column("ratio", "real", 700, { kind: "float" }),
    column("score", "double precision", 701, { kind: "double" }),
    column("flag", "boolean", 16, { kind: "boolean" }),
    column("label", "text", 25, { kind: "string" }),
    column("born", "date", 1082, { kind: "date" }),
    column("created_at", "timestamp with time zone", 1184, { kind: "timestamp" }),
    column("payload", "bytea", 17, { kind: "binary" }),
    column("tags", "text[]", 1009, { kind: "array", element: { kind: "string" } }),
    column("nums", "integer[]", 1007, { kind: "array", element: { kind: "integer" } }),
    column("amounts", "numeric(20,2)[]", 1231, { kind: "array", element: decimal(20, 2) }),
    column("stamps", "timestamp with time zone[]", 1185, { kind: "array", element: { kind: "timestamp" } }),
    column("ref", "uuid", 2950, { kind: "string" })
  ],
  key: ["id"]
}

/** The schema after `ALTER TABLE ... ADD COLUMN note varchar(40)`. */
export const withNote: TableSchema = {
  columns: [...everyTypeSchema.columns, column("note", "character varying(40)", 1043, { kind: "string" })],
  key: ["id"]
}

const nines = (digits: number) => 10n ** BigInt(digits) - 1n
const micros = (iso: string, extraMicros = 0n) => BigInt(Date.parse(iso)) * 1000n + extraMicros
const days = (iso: string) => Date.parse(`${iso}T00:00:00Z`) / 86_400_000

/** Four rows: ordinary, all null but the key, the maxima and edge values, the minima. */
export const everyTypeRows: ReadonlyArray<Row> = [
  [
    1n,
    12,
    42,
    1234567891n, // 1234567.891
    -5n, // -0.05
    123456789012345678901234567890n, // 12345678901234567890.1234567890
    1.5,
    Math.PI,
    true,
    "Zoë 🍕 日本語 \"quoted\", comma",
    days("2025-01-15"),
    micros("2025-01-15T10:00:00.123Z", 456n),
    new Uint8Array([0, 1, 127, 128, 255]),
    ["a", null, "ü", ""],
    [1, null, -3],
    [12345n, null, -1n],
    [micros("2025-01-15T00:00:00Z", 1n), null],
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
  ],
  [2n, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null],
  [
    9_223_372_036_854_775_807n,
    32767,
    2_147_483_647,
    nines(12),
    nines(5),
    nines(38),
    Number.NaN,
    -0,
    false,
    "",
    -1, // 1969-12-31
    micros("2025-01-16T23:59:59.999Z", 999n),
    new Uint8Array([]),
    [],
    [null],
    [nines(20), -nines(20)],
    [-1n], // 1969-12-31T23:59:59.999999Z
    ""
  ],
  [
    -9_223_372_036_854_775_808n,
    -32768,
    -2_147_483_648,
    -nines(12),
    -nines(5),
    -nines(38),
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    true,
    "x".repeat(300),
    days("0001-01-01"),
    micros("2025-01-16T00:00:00Z"),
    new Uint8Array(300).fill(7),
    ["z"],
    [2_147_483_647, -2_147_483_648],
    [0n],
    [],
    "ffffffff-ffff-ffff-ffff-ffffffffffff"
  ]
]

/** A column's value as a float column stores it (32 bits). */
export const asStored = (type: ColumnType, value: Value): Value => {
  const scalar = (t: ScalarType, v: Scalar): Scalar => (t.kind === "float" && typeof v === "number" ? Math.fround(v) : v)
  if (type.kind === "array") return value === null ? null : (value as ReadonlyArray<Scalar>).map((v) => scalar(type.element, v))
  return scalar(type, value as Scalar)
}
