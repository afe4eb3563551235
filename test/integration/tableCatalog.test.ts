/**
 * The column codec against the real PostgreSQL: the catalog read of a table of every supported type,
 * the errors for unsupported types and a missing key, then the text rules on the server's own output
 * (read as text under a non-UTC TimeZone, and received through pgoutput), each decoded value checked
 * against what PostgreSQL computes itself.
 */
import { randomBytes } from "node:crypto"
import { Effect, Either } from "effect"
import pg from "pg"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { Column, ColumnType, Row, TableSchema, Value } from "../../src/domain/columns.ts"
import { decodeRow, keyText } from "../../src/domain/rowDecode.ts"
import { floatText, valueJson } from "../../src/domain/valueJson.ts"
import type { CaptureError } from "../../src/layers/postgres/logical/CaptureError.ts"
import { openReplicationStream, type StreamItem } from "../../src/layers/postgres/logical/replicationStream.ts"
import { keyJson, pgTextToJson, PgTextError, rowJson } from "../../src/layers/postgres/pgText.ts"
import { columnTypeOfOid, readTableSchema } from "../../src/layers/postgres/tableCatalog.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { dropSlotQuietly, grantReplication, pgSettingsFromUrl } from "../support/logicalPostgres.ts"
import { uniqueName } from "../support/names.ts"

const keepText = (value: string) => value

/** A pool whose every value arrives as PostgreSQL's text, as the snapshot reader reads it. */
const textPool = (url: string, timeZone: string, extra = "") =>
  new pg.Pool({
    connectionString: url,
    max: 2,
    options: `-c DateStyle=ISO,YMD -c TimeZone=${timeZone}${extra}`,
    types: { getTypeParser: () => keepText } as unknown as pg.CustomTypesConfig
  })

const run = <A>(effect: Effect.Effect<A, CaptureError>) => Effect.runPromise(effect)
const failure = async (effect: Effect.Effect<unknown, CaptureError>) => {
  const result = await Effect.runPromise(Effect.either(effect))
  if (Either.isRight(result)) throw new Error("expected a failure")
  return result.left.message
}

const t = (kind: Exclude<ColumnType["kind"], "array" | "decimal">): ColumnType => ({ kind }) as ColumnType
const arrayOf = (element: ColumnType): ColumnType => ({ kind: "array", element: element as Exclude<ColumnType, { kind: "array" }> })

/** name, declared type, expected format_type, expected lake type. */
const columns: ReadonlyArray<readonly [string, string, string, ColumnType]> = [
  ["id", "bigint", "bigint", t("long")],
  ["c_small", "smallint", "smallint", t("short")],
  ["c_int", "integer NOT NULL", "integer", t("integer")],
  ["c_big", "bigint", "bigint", t("long")],
  ["c_num", "numeric(12,3)", "numeric(12,3)", { kind: "decimal", precision: 12, scale: 3 }],
  ["c_numfree", "numeric", "numeric", t("string")],
  ["c_num50", "numeric(50,2)", "numeric(50,2)", t("string")],
  ["c_real", "real", "real", t("float")],
  ["c_double", "double precision", "double precision", t("double")],
  ["c_bool", "boolean", "boolean", t("boolean")],
  ["c_text", "text", "text", t("string")],
  ["c_varchar", "varchar(20)", "character varying(20)", t("string")],
  ["c_char", "char(3)", "character(3)", t("string")],
  ["c_date", "date", "date", t("date")],
  ["c_ts", "timestamp", "timestamp without time zone", t("timestamp")],
  ["c_tstz", "timestamptz", "timestamp with time zone", t("timestamp")],
  ["c_time", "time", "time without time zone", t("string")],
  ["c_timetz", "timetz", "time with time zone", t("string")],
  ["c_uuid", "uuid", "uuid", t("string")],
  ["c_json", "json", "json", t("string")],
  ["c_jsonb", "jsonb", "jsonb", t("string")],
  ["c_bytea", "bytea", "bytea", t("binary")],
  ["c_ints", "int[]", "integer[]", arrayOf(t("integer"))],
  ["c_texts", "text[]", "text[]", arrayOf(t("string"))],
  ["c_mood", "mood", "mood", t("string")],
  ["c_posint", "posint", "posint", t("integer")],
  ["c_price", "price", "price", { kind: "decimal", precision: 10, scale: 2 }],
  ["c_nums", "numeric(5,2)[]", "numeric(5,2)[]", arrayOf({ kind: "decimal", precision: 5, scale: 2 })],
  ["c_tss", "timestamptz[]", "timestamp with time zone[]", arrayOf(t("timestamp"))],
  ["c_moods", "mood[]", "mood[]", arrayOf(t("string"))]
]

const names = columns.map(([name]) => name)

/** Each row's values as SQL literals, in column order. */
const rows: ReadonlyArray<ReadonlyArray<string>> = [
  [
    "1", "7", "42", "1234567890123", "123456789.125", "3.14159265358979323846264338327950288",
    "123456789012345678901234567890123456789012345678.90", "1.1", "0.1", "true", "'héllo 🍕 中文 👩‍👩‍👧'", "'varchar'", "'ab'",
    "'2025-01-15'", "'2025-01-15 12:24:00.123456'", "'2025-01-14 20:00:00.5+00'", "'12:24:00.5'", "'12:24:00+05:30'",
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", `'{"a": [1, 2.50], "b": "x"}'`, `'{"b": 1.0, "a": "🍕"}'`, "'\\x0a0bff'",
    "'{1,2,NULL}'", `'{"a,b","c\\"d",NULL,"NULL","back\\\\slash","🍕",""}'`, "'happy'", "5", "12.3", "'{1.5,NULL,-2.25}'",
    `'{"2025-01-15 00:00:00+00",NULL}'`, "'{happy,sad}'"
  ],
  ["2", ...names.slice(1).map((name) => (name === "c_int" ? "0" : "NULL"))],
  [
    "3", "-32768", "2147483647", "9223372036854775807", "999999999.999", "'NaN'", "-0.01", "'-0'", "1e20", "false", "''",
    "E'tab\\t\\x01\\n\"q\" \\\\'", "'xyz'", "'0001-01-01'", "'0001-01-01 00:00:00'", "'1970-01-01 00:00:00+05:30'",
    "'00:00:00'", "'23:59:59.999999-08'", "'00000000-0000-0000-0000-000000000000'", "'null'", "'[]'", "''", "'{}'", "'{}'",
    "'sad'", "1", "0.00", "'{}'", "'{}'", "'{}'"
  ],
  [
    "4", "-1", "-2147483648", "-9223372036854775808", "-1.500", "'-0.000001000'", "0", "'Infinity'", "'-Infinity'", "true",
    "repeat('x', 3000)", "' lead'", "'a'", "'9999-12-31'", "'9999-12-31 23:59:59.999999'", "'2024-02-29 23:59:59.999999-00:30'",
    "'23:59:59.999999'", "'00:00:00+14'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "'\"🍕\"'", `'{"n": 12345678901234567890.5}'`,
    "decode('000102fe', 'hex')", "'[0:2]={7,8,9}'", `'{"x y","{braces}"," NULL ",null}'`, "'ok'", "2147483647", "-99999999.99",
    "'{999.99,-999.99}'", `'{"0001-01-01 00:00:00+00","9999-12-31 23:59:59.999999+00"}'`, "'{}'"
  ],
  [
    "5", "0", "1", "0", "0.000", "'0'", "99999999999999999999999999999999999999999999999.99", "'3.4028235e+38'", "'1e-05'", "false",
    "'x'", "'y'", "'z  '", "'1970-01-01'", "'1970-01-01 00:00:00'", "'1969-12-31 23:59:59.999999+00'", "'01:02:03'", "'01:02:03-00:30'",
    "'6ba7b810-9dad-11d1-80b4-00c04fd430c8'", "'{}'", "'{}'", "decode(repeat('ff', 200), 'hex')", "'{-2147483648,2147483647}'",
    "'{\"\\\\\"}'", "'happy'", "3", "0.01", "'{0.00}'", "'{NULL}'", "'{NULL,happy}'"
  ]
]

/**
 * What PostgreSQL itself says each value is, in the representation of src/domain/columns.ts, as
 * text: integers and bigints as digits, decimals as their unscaled digits, dates as days since
 * 1970-01-01, timestamps as epoch microseconds, bytea as base64, arrays as JSON of the same.
 */
const unscaled = (expr: string, scale: number) => `(${expr} * 1${"0".repeat(scale)})::numeric(60,0)::text`
const epochMicros = (expr: string) => `(extract(epoch from ${expr}) * 1000000)::numeric(30,0)::text`
const jsonOf = (element: (x: string) => string, column: string) =>
  `CASE WHEN ${column} IS NULL THEN NULL ELSE coalesce((SELECT json_agg(CASE WHEN x IS NULL THEN NULL ELSE ${element("x")} END ORDER BY o) FROM unnest(${column}) WITH ORDINALITY AS u(x, o))::text, '[]') END`
const reference: Readonly<Record<string, string>> = {
  c_num: unscaled("c_num", 3),
  c_price: unscaled("c_price", 2),
  c_real: "c_real::float8::text",
  c_double: "c_double::text",
  c_date: "(c_date - date '1970-01-01')::text",
  c_ts: epochMicros("c_ts"),
  c_tstz: epochMicros("c_tstz"),
  c_bytea: "translate(encode(c_bytea, 'base64'), E'\\n', '')",
  c_char: "CASE WHEN c_char IS NULL THEN NULL ELSE concat(c_char) END",
  c_ints: "array_to_json(c_ints)::text",
  c_texts: "array_to_json(c_texts)::text",
  c_moods: "array_to_json(c_moods)::text",
  c_nums: jsonOf((x) => unscaled(x, 2), "c_nums"),
  c_tss: jsonOf(epochMicros, "c_tss")
}

/** A decoded value in the reference's form (arrays parsed: PostgreSQL's JSON spacing and escapes are its own). */
const asReference = (column: Column, value: Value): unknown => {
  if (value === null) return null
  const type = column.type
  if (type.kind === "array") return (value as ReadonlyArray<Value>).map((v) => (typeof v === "bigint" ? v.toString() : v))
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64")
  if (type.kind === "float") return String(Math.fround(value as number))
  if (type.kind === "boolean") return value ? "true" : "false"
  return String(value)
}

/** The reference in the same form: arrays parsed, floats read as doubles (float4 rounded to single). */
const referenceOf = (column: Column, text: string | null): unknown => {
  if (text === null) return null
  if (column.type.kind === "array") return JSON.parse(text)
  if (column.type.kind === "float") return String(Math.fround(Number(text)))
  if (column.type.kind === "double") return String(Number(text))
  return text
}

describeIntegration("column codec on the real PostgreSQL", (endpoints) => {
  const schemaName = uniqueName("codec")
  const table = { schema: schemaName, name: "every_type" }
  const qualified = `"${schemaName}".every_type`
  const slot = `${schemaName}_slot`
  const publication = `${schemaName}_pub`
  let pool: pg.Pool

  beforeAll(async () => {
    await grantReplication(endpoints)
    pool = textPool(endpoints.pgUrl, "Asia/Kolkata")
    await pool.query(`CREATE SCHEMA "${schemaName}"`)
    const ddl = [
      `CREATE TYPE "${schemaName}".mood AS ENUM ('sad', 'ok', 'happy')`,
      `CREATE DOMAIN "${schemaName}".posint AS integer CHECK (VALUE >= 0)`,
      `CREATE DOMAIN "${schemaName}".price AS numeric(10,2)`,
      `CREATE TABLE ${qualified} (${columns.map(([name, type]) => `${name} ${type.replace(/\b(mood|posint|price)\b/, `"${schemaName}".$1`)}`).join(", ")}, gone int, PRIMARY KEY (id))`,
      `ALTER TABLE ${qualified} DROP COLUMN gone`,
      `ALTER TABLE ${qualified} ADD COLUMN doubled bigint GENERATED ALWAYS AS (id * 2) STORED`
    ]
    for (const statement of ddl) await pool.query(statement)
  })

  afterAll(async () => {
    await dropSlotQuietly(endpoints, slot)
    await pool.query(`DROP PUBLICATION IF EXISTS "${publication}"`).catch(() => undefined)
    await pool.query(`DROP SCHEMA IF EXISTS "${schemaName}" CASCADE`).catch(() => undefined)
    await pool.end()
  })

  let schema: TableSchema

  it("reads the columns in order with their types, nullability and the primary key; dropped and generated columns left out", async () => {
    schema = await run(readTableSchema(pool, table))
    expect(schema.key).toEqual(["id"])
    expect(schema.columns.map(({ name, pgType, type, nullable }) => ({ name, pgType, type, nullable }))).toEqual(
      // format_type qualifies a type whose schema is not on the search_path.
      columns.map(([name, declared, pgType, type]) => ({
        name,
        pgType: /^(mood|posint|price)/.test(pgType) ? `${schemaName}.${pgType}` : pgType,
        type,
        nullable: name !== "id" && !declared.includes("NOT NULL")
      }))
    )
    const oids = await pool.query(`SELECT attname, atttypid::int AS oid FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0`, [qualified])
    const oidOf = new Map(oids.rows.map((r) => [r.attname as string, Number(r.oid)]))
    for (const column of schema.columns) expect(column.typeOid, column.name).toBe(oidOf.get(column.name))
  })

  it("takes a configured key in its order, and names configured columns that do not exist", async () => {
    expect((await run(readTableSchema(pool, table, ["c_uuid", "id"]))).key).toEqual(["c_uuid", "id"])
    const message = await failure(readTableSchema(pool, table, ["id", "nope", "nada"]))
    expect(message).toMatch(/names columns it does not have: nope, nada/)
  })

  it("names every unsupported column in one error, and asks for a key when there is no primary key", async () => {
    await pool.query(`CREATE TABLE "${schemaName}".odd (id int PRIMARY KEY, span interval, spot point, ok text, spans interval[])`)
    const message = await failure(readTableSchema(pool, { schema: schemaName, name: "odd" }))
    expect(message).toMatch(/column span has type interval/)
    expect(message).toMatch(/column spot has type point/)
    expect(message).toMatch(/column spans has type interval\[\]/)
    expect(message).not.toMatch(/column ok/)
    expect(message).toMatch(/Supported types: smallint/)
    await pool.query(`CREATE TABLE "${schemaName}".keyless (a int, b text)`)
    expect(await failure(readTableSchema(pool, { schema: schemaName, name: "keyless" }))).toMatch(/no primary key: .*key:/)
    expect((await run(readTableSchema(pool, { schema: schemaName, name: "keyless" }, ["b"]))).key).toEqual(["b"])
    expect(await failure(readTableSchema(pool, { schema: schemaName, name: "absent" }))).toMatch(/does not exist/)
  })

  it("maps a pgoutput column's type OID and typmod (cached per pool)", async () => {
    const typmod = Number((await pool.query(`SELECT atttypmod FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'c_num'`, [qualified])).rows[0].atttypmod)
    expect(await run(columnTypeOfOid(pool, 1700, typmod))).toEqual({ kind: "decimal", precision: 12, scale: 3 })
    expect(await run(columnTypeOfOid(pool, 1700, -1))).toEqual({ kind: "string" })
    const mood = schema.columns.find((c) => c.name === "c_moods")!
    expect(await run(columnTypeOfOid(pool, mood.typeOid, -1))).toEqual(arrayOf(t("string")))
    const price = schema.columns.find((c) => c.name === "c_price")!
    expect(await run(columnTypeOfOid(pool, price.typeOid, -1))).toEqual({ kind: "decimal", precision: 10, scale: 2 })
    expect(await failure(columnTypeOfOid(pool, 1186, -1))).toMatch(/type interval is not supported/)
  })

  const inserted = (values: ReadonlyArray<ReadonlyArray<string>>) =>
    `INSERT INTO ${qualified} (${names.join(", ")}) VALUES ${values.map((row) => `(${row.join(", ")})`).join(", ")}`

  it("publishes PostgreSQL's text (TimeZone Asia/Kolkata) as JSON that decodes to the values PostgreSQL computes", async () => {
    // The slot first: the same rows then also arrive through pgoutput (next test).
    await pool.query(`CREATE PUBLICATION "${publication}" FOR TABLE ${qualified}`)
    await pool.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot])
    await pool.query(inserted(rows))
    const text = (await pool.query(`SELECT * FROM ${qualified} ORDER BY id`)).rows as Array<Record<string, string | null>>
    expect(text[0]!["c_tstz"]).toMatch(/\+05:30$/) // printed in the session's zone, not UTC
    const references = (await pool.query(
      `SELECT ${schema.columns.map((c) => `${reference[c.name] ?? `${c.name}::text`} AS ${c.name}`).join(", ")} FROM ${qualified} ORDER BY id`
    )).rows as Array<Record<string, string | null>>
    expect(text.length).toBe(rows.length)
    let compared = 0
    for (const [i, tuple] of text.entries()) {
      const json = rowJson(schema, tuple)
      expect(() => JSON.parse(json), json).not.toThrow()
      const decoded = decodeRow(schema, json)
      if (Either.isLeft(decoded)) throw new Error(`row ${tuple["id"]}: ${decoded.left}`)
      const row: Row = decoded.right
      for (const [index, column] of schema.columns.entries()) {
        const expected = references[i]![column.name]!
        const actual = asReference(column, row[index]!)
        const want = referenceOf(column, expected)
        expect(actual, `row ${tuple["id"]} column ${column.name}: ${tuple[column.name]}`).toEqual(want)
        // The way back gives PostgreSQL's text again (float formatting, decimal scale, fractions).
        expect(valueJson(column, row[index]!), `row ${tuple["id"]} column ${column.name} written back`).toBe(pgTextToJson(column, tuple[column.name] ?? null))
        compared += 1
      }
      expect(keyText(schema, row)).toBe(keyJson(schema, tuple))
    }
    expect(compared).toBe(rows.length * columns.length)
    // Signs PostgreSQL cannot print as numbers survive as themselves.
    const edge = decodeRow(schema, rowJson(schema, text[2]!))
    const edgeRow = Either.getOrThrow(edge)
    expect(Object.is(edgeRow[names.indexOf("c_real")], -0)).toBe(true)
    expect(edgeRow[names.indexOf("c_numfree")]).toBe("NaN")
    expect(edgeRow[names.indexOf("c_big")]).toBe(9223372036854775807n)
  })

  it("keys of every key type match between producer and consumer", async () => {
    const keyed = await run(readTableSchema(pool, table, ["c_double", "c_real", "c_tstz", "c_bytea", "c_num", "c_numfree", "c_texts"]))
    const text = (await pool.query(`SELECT * FROM ${qualified} ORDER BY id`)).rows as Array<Record<string, string | null>>
    for (const tuple of text) expect(keyText(keyed, Either.getOrThrow(decodeRow(keyed, rowJson(keyed, tuple))))).toBe(keyJson(keyed, tuple))
  })

  it("bytea's escape output and the zone of the session do not change the JSON", async () => {
    const other = textPool(endpoints.pgUrl, "America/Los_Angeles", " -c bytea_output=escape")
    try {
      const escaped = (await other.query(`SELECT * FROM ${qualified} ORDER BY id`)).rows as Array<Record<string, string | null>>
      expect(escaped[0]!["c_bytea"]).not.toMatch(/^\\x/)
      const hex = (await pool.query(`SELECT * FROM ${qualified} ORDER BY id`)).rows as Array<Record<string, string | null>>
      for (const [i, tuple] of escaped.entries()) expect(rowJson(schema, tuple)).toBe(rowJson(schema, hex[i]!))
    } finally {
      await other.end()
    }
  })

  it("random floats print as PostgreSQL prints them, random instants in three zones decode to PostgreSQL's epoch", async () => {
    const scaled = (exponents: string) => `(random() - 0.5) * power(10::float8, floor(random() * ${exponents}))`
    const floats = (await pool.query(
      `SELECT (${scaled("600 - 300")})::text AS d, (${scaled("70 - 35")})::real::text AS r FROM generate_series(1, 10000)
       UNION ALL SELECT v::text, v::real::text FROM (SELECT round((random() * 1000)::numeric, g % 6)::float8 AS v FROM generate_series(1, 500) AS g) AS s`
    )).rows as Array<{ d: string; r: string }>
    expect(floats.length).toBe(10500)
    for (const { d, r } of floats) {
      expect(floatText(Number(d), false), d).toBe(d)
      expect(floatText(Number(r), true), r).toBe(r)
    }
    const column: Column = { name: "at", pgType: "timestamp with time zone", typeOid: 1184, type: t("timestamp"), nullable: true }
    const one: TableSchema = { columns: [column], key: ["at"] }
    for (const zone of ["Asia/Kolkata", "America/St_Johns", "Pacific/Chatham"]) {
      const zoned = textPool(endpoints.pgUrl, zone)
      try {
        const instants = (await zoned.query(
          `SELECT at::text AS at, (extract(epoch from at) * 1000000)::numeric(30,0)::text AS micros FROM (
             SELECT timestamptz '1900-01-01 00:00:00+00' + random() * interval '200 years' AS at FROM generate_series(1, 500)
           ) AS v`
        )).rows as Array<{ at: string; micros: string }>
        for (const { at, micros } of instants) {
          expect(Either.getOrThrow(decodeRow(one, rowJson(one, { at })))[0], `${zone} ${at}`).toBe(BigInt(micros))
        }
      } finally {
        await zoned.end()
      }
    }
  })

  it("values the lake cannot hold are published as PostgreSQL's text and rejected by the consumer", async () => {
    const [r] = (await pool.query(
      `SELECT 'infinity'::date AS d, '0044-03-15 BC'::date AS bc, '-infinity'::timestamptz AS ts, '0044-03-15 10:00:00 BC'::timestamp AS tsbc,
        '{{1,2},{3,4}}'::int[] AS grid, 'NaN'::numeric(10,2) AS nan`
    )).rows as Array<Record<string, string>>
    const col = (name: string, type: ColumnType): Column => ({ name, pgType: "", typeOid: 0, type, nullable: true })
    const one = (c: Column): TableSchema => ({ columns: [c], key: [c.name] })
    const cases: ReadonlyArray<[Column, string, string]> = [
      [col("d", t("date")), '"infinity"', "not a date"],
      [col("bc", t("date")), '"0044-03-15 BC"', "not a date"],
      [col("ts", t("timestamp")), '"-infinity"', "not a UTC timestamp"],
      [col("tsbc", t("timestamp")), '"0044-03-15 10:00:00 BC"', "not a UTC timestamp"],
      [col("grid", arrayOf(t("integer"))), "[[1,2],[3,4]]", "multi-dimensional"],
      [col("nan", { kind: "decimal", precision: 10, scale: 2 }), '"NaN"', "NaN cannot be stored in decimal(10,2)"]
    ]
    for (const [column, json, problem] of cases) {
      expect(pgTextToJson(column, r![column.name]!)).toBe(json)
      const decoded = decodeRow(one(column), rowJson(one(column), r!))
      expect(Either.isLeft(decoded) ? decoded.left : "decoded").toContain(`column ${column.name}: `)
      expect(Either.isLeft(decoded) ? decoded.left : "decoded").toContain(problem)
    }
  })

  it("pgoutput sends the same text: the stream's rows give the same JSON as the query's; an unchanged TOAST value is named", async () => {
    const settings = pgSettingsFromUrl(endpoints.pgUrl, "codec-test")
    // Random hex does not compress: PostgreSQL stores it out of line (TOAST).
    const big = randomBytes(4_000).toString("hex")
    const { inserts, updates } = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const stream = yield* openReplicationStream(settings, slot, publication, { confirmed: 0n, statusInterval: "10 seconds" })
      const inserts: Array<Record<string, unknown>> = []
      const updates: Array<Record<string, unknown>> = []
      while (inserts.length < rows.length) {
        const item: StreamItem = yield* stream.take
        if (item._tag === "data" && item.message.tag === "insert") inserts.push(item.message.new)
      }
      yield* Effect.promise(() => pool.query(`UPDATE ${qualified} SET c_text = $1 WHERE id = 5`, [big]))
      yield* Effect.promise(() => pool.query(`UPDATE ${qualified} SET c_small = 9 WHERE id = 5`))
      while (updates.length < 2) {
        const item: StreamItem = yield* stream.take
        if (item._tag === "data" && item.message.tag === "update") updates.push(item.message.new)
      }
      return { inserts, updates }
    })).pipe(Effect.timeout("60 seconds")))
    // The second update did not touch the out-of-line value: pgoutput leaves it out (REPLICA IDENTITY DEFAULT).
    expect(JSON.parse(rowJson(schema, updates[0]!))["c_text"]).toBe(big)
    let unchanged: unknown
    try {
      rowJson(schema, updates[1]!)
    } catch (error) {
      unchanged = error
    }
    expect(unchanged).toBeInstanceOf(PgTextError)
    expect((unchanged as PgTextError).unchanged).toBe(true)
    expect((unchanged as PgTextError).column).toBe("c_text")
    expect(keyJson(schema, updates[1]!)).toBe('{"id":5}')
    await pool.query(`UPDATE ${qualified} SET c_text = 'x', c_small = 0 WHERE id = 5`)
    const text = (await pool.query(`SELECT * FROM ${qualified} ORDER BY id`)).rows as Array<Record<string, string | null>>
    const byId = new Map(inserts.map((tuple) => [String(tuple["id"]), tuple]))
    for (const tuple of text) {
      const streamed = byId.get(String(tuple["id"]))
      expect(streamed, `row ${tuple["id"]} streamed`).toBeDefined()
      expect(rowJson(schema, streamed!)).toBe(rowJson(schema, tuple))
      expect(keyJson(schema, streamed!)).toBe(keyJson(schema, tuple))
    }
  })
})
