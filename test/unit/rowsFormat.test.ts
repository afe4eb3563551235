/**
 * The table format of a captured table of any schema (src/table/rowsFormat.ts and its parts): rows of
 * every type come back from our Parquet files exactly; the statistics are exact; the Delta schema
 * reads back into the same columns; schema changes are told apart (added vs dropped or retyped); an
 * old file reads under an added column as null.
 */
import { parquetMetadata, parquetSchema } from "hyparquet"
import { describe, expect, it } from "vitest"
import type { Column, Row, TableSchema, Value } from "../../src/domain/columns.ts"
import type { AddFile } from "../../src/table/actions.ts"
import { parquetCreatedBy } from "../../src/table/engine.ts"
import { partitionValueOf, rowsFormat } from "../../src/table/rowsFormat.ts"
import { decimalBytes } from "../../src/table/rowsParquet.ts"
import { datePartition, deltaNamesProblem, evolvedMetadata, noPartition, type PartitionSpec, RowsSchemaError, schemaChange, tableSchemaOfDelta } from "../../src/table/rowsSchema.ts"
import { rowFileBytes } from "../../src/table/tableFormat.ts"
import { asStored, everyTypeRows, everyTypeSchema, withNote } from "../support/rowsFixture.ts"

const partition = datePartition(everyTypeSchema, "created_at") as PartitionSpec
const format = rowsFormat("public.every_type", everyTypeSchema, partition)
const stored = (rows: ReadonlyArray<Row>, schema: TableSchema = everyTypeSchema): Array<Row> =>
  rows.map((row) => schema.columns.map((c, i) => asStored(c.type, row[i] ?? null)))

const writeInChunks = (rows: ReadonlyArray<Row>) => {
  const writer = format.writer()
  writer.write(rows.slice(0, 1))
  writer.write(rows.slice(1))
  return writer.finish()
}

describe("rows of every type through our Parquet files", () => {
  const bytes = writeInChunks(everyTypeRows)

  it("come back exactly (nulls, NaN, -0, ±Infinity, bigint and decimal(38,10) bounds, empty and null-holding arrays, unicode, empty binary)", async () => {
    expect(await format.read(bytes)).toEqual(stored(everyTypeRows))
  })

  it("a row range reads those rows only", async () => {
    expect(await format.read(bytes, 1, 3)).toEqual(stored(everyTypeRows.slice(1, 3)))
  })

  it("are typed as Spark writes each Delta type, partition column left out, with our created_by", () => {
    const metadata = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer)
    expect(metadata.created_by).toBe(parquetCreatedBy)
    const tree = parquetSchema(metadata)
    expect(tree.children.map((c) => c.element.name)).toEqual(everyTypeSchema.columns.map((c) => c.name))
    const element = (name: string) => tree.children.find((c) => c.element.name === name)!.element
    expect(element("small")).toMatchObject({ type: "INT32", converted_type: "INT_16" })
    expect(element("qty")).toMatchObject({ type: "INT32" })
    expect(element("id")).toMatchObject({ type: "INT64" })
    expect(element("tiny_dec")).toMatchObject({ type: "INT32", precision: 5, scale: 2 })
    expect(element("price")).toMatchObject({ type: "INT64", precision: 12, scale: 3 })
    expect(element("big_dec")).toMatchObject({ type: "FIXED_LEN_BYTE_ARRAY", type_length: 16, precision: 38, scale: 10 })
    expect(element("ratio").type).toBe("FLOAT")
    // No Parquet bounds for floats (Spark orders NaN above every number; the bounds leave it out).
    const chunk = (name: string) => metadata.row_groups[0]!.columns.find((c) => c.meta_data?.path_in_schema[0] === name)!.meta_data!
    expect(chunk("ratio").statistics?.max_value).toBeUndefined()
    expect(chunk("score").statistics?.max_value).toBeUndefined()
    expect(chunk("qty").statistics?.max_value).toBeDefined()
    expect(element("label")).toMatchObject({ type: "BYTE_ARRAY", logical_type: { type: "STRING" } })
    expect(element("born")).toMatchObject({ type: "INT32", logical_type: { type: "DATE" } })
    expect(element("created_at")).toMatchObject({ type: "INT64", logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" } })
    expect(element("payload")).toMatchObject({ type: "BYTE_ARRAY" })
    expect(element("payload").logical_type).toBeUndefined()
    const amounts = tree.children.find((c) => c.element.name === "amounts")!
    expect(amounts.element).toMatchObject({ repetition_type: "OPTIONAL", logical_type: { type: "LIST" } })
    expect(amounts.children[0]!.element).toMatchObject({ name: "list", repetition_type: "REPEATED" })
    expect(amounts.children[0]!.children[0]!.element).toMatchObject({ name: "element", repetition_type: "OPTIONAL", type: "FIXED_LEN_BYTE_ARRAY", type_length: 9 })
  })

  it("FIXED_LEN_BYTE_ARRAY decimals take the fewest bytes that hold every value of the precision", () => {
    for (let precision = 1; precision <= 38; precision++) {
      const bytes = decimalBytes(precision)
      const largest = 10n ** BigInt(precision) - 1n
      expect(largest <= (1n << BigInt(8 * bytes - 1)) - 1n).toBe(true)
      expect(largest > (1n << BigInt(8 * (bytes - 1) - 1)) - 1n).toBe(true)
    }
  })
})

/** The literal a stats section gives a column, as written (JSON.parse would round long bounds). */
const literal = (stats: string, section: "minValues" | "maxValues" | "nullCount", column: string): string | undefined => {
  const body = new RegExp(`"${section}":\\{([^}]*)\\}`).exec(stats)?.[1] ?? ""
  return new RegExp(`(?:^|,)"${column}":("[^"]*"|[^,]+)`).exec(body)?.[1]
}

/** An independent spelling of a decimal: quotient and remainder of the unscaled value. */
const decimalText = (unscaled: bigint, scale: number) => {
  const abs = unscaled < 0n ? -unscaled : unscaled
  const unit = 10n ** BigInt(scale)
  const fraction = scale === 0 ? "" : `.${(abs % unit).toString().padStart(scale, "0")}`
  return `${unscaled < 0n ? "-" : ""}${abs / unit}${fraction}`
}

const isoMillis = (micros: bigint) => {
  const millis = Number(micros / 1000n) - (micros < 0n && micros % 1000n !== 0n ? 1 : 0)
  return JSON.stringify(new Date(millis).toISOString())
}

describe("statistics", () => {
  const stats = format.stats().add(everyTypeRows.slice(0, 3)).add(everyTypeRows.slice(3)).json()
  const values = (name: string) => {
    const i = everyTypeSchema.columns.findIndex((c) => c.name === name)
    return everyTypeRows.map((row) => row[i]!).filter((v) => v !== null)
  }
  const sorted = <T extends number | bigint>(name: string) => (values(name) as Array<T>).slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))

  it("count the rows, chunk by chunk, and the nulls of every scalar column (none for arrays or the partition column)", () => {
    expect(JSON.parse(stats).numRecords).toBe(everyTypeRows.length)
    const nullCount = JSON.parse(stats).nullCount as Record<string, number>
    const scalars = everyTypeSchema.columns.filter((c) => c.type.kind !== "array")
    expect(Object.keys(nullCount)).toEqual(scalars.map((c) => c.name))
    for (const c of scalars) expect(nullCount[c.name], c.name).toBe(everyTypeRows.length - values(c.name).length)
  })

  it("bound integers and decimals with their exact literals", () => {
    for (const name of ["id", "small", "qty"]) {
      const v = sorted(name)
      expect(literal(stats, "minValues", name), name).toBe(String(v[0]))
      expect(literal(stats, "maxValues", name), name).toBe(String(v.at(-1)))
    }
    for (const [name, scale] of [["price", 3], ["tiny_dec", 2], ["big_dec", 10]] as const) {
      const v = sorted<bigint>(name)
      expect(literal(stats, "minValues", name), name).toBe(decimalText(v[0]!, scale))
      expect(literal(stats, "maxValues", name), name).toBe(decimalText(v.at(-1)!, scale))
    }
  })

  it("bound dates as days and timestamps floored to the millisecond", () => {
    const born = sorted<number>("born")
    expect(literal(stats, "minValues", "born")).toBe(JSON.stringify(new Date(born[0]! * 86_400_000).toISOString().slice(0, 10)))
    expect(literal(stats, "maxValues", "born")).toBe(JSON.stringify(new Date(born.at(-1)! * 86_400_000).toISOString().slice(0, 10)))
    const created = sorted<bigint>("created_at")
    expect(literal(stats, "minValues", "created_at")).toBe(isoMillis(created[0]!))
    expect(literal(stats, "maxValues", "created_at")).toBe(isoMillis(created.at(-1)!))
  })

  it("leave out bounds of strings, floats, booleans, binary and arrays", () => {
    const min = JSON.parse(stats).minValues as Record<string, unknown>
    const max = JSON.parse(stats).maxValues as Record<string, unknown>
    for (const name of ["ratio", "score", "flag", "label", "payload", "tags", "nums", "amounts", "stamps", "ref"]) {
      expect(min[name], name).toBeUndefined()
      expect(max[name], name).toBeUndefined()
    }
  })

  it("floor a negative sub-millisecond timestamp, and leave out bounds no engine can spell", () => {
    const schema: TableSchema = {
      columns: [
        { name: "at", pgType: "timestamp", typeOid: 1114, type: { kind: "timestamp" }, nullable: true },
        { name: "on", pgType: "date", typeOid: 1082, type: { kind: "date" }, nullable: true }
      ],
      key: []
    }
    const text = rowsFormat("t", schema, noPartition).stats().add([[-1n, 2_932_897], [-1001n, -719_163]]).json()
    expect(literal(text, "minValues", "at")).toBe(isoMillis(-1001n))
    expect(literal(text, "maxValues", "at")).toBe(isoMillis(-1n))
    expect(literal(text, "minValues", "at")).toBe(`"1969-12-31T23:59:59.998Z"`)
    // 10000-01-01 and 0000-12-31: outside years 1..9999.
    expect(literal(text, "minValues", "on")).toBeUndefined()
    expect(literal(text, "maxValues", "on")).toBeUndefined()
    expect(JSON.parse(text).nullCount).toEqual({ at: 0, on: 0 })
  })
})

describe("row keys", () => {
  const keys = format.keys!
  const bytes = rowFileBytes(format, everyTypeRows)
  const statsAdd = (rows: ReadonlyArray<Row>): AddFile => ({
    path: "f.parquet",
    partitionValues: {},
    size: 1,
    modificationTime: 0,
    dataChange: true,
    stats: format.stats().add(rows).json()
  })

  it("are canonical texts, the same from a row in memory and from the file's key column", async () => {
    expect(keys.keyOf(everyTypeRows[0]!)).toBe("[1]")
    expect(keys.keyOf(everyTypeRows[2]!)).toBe("[9223372036854775807]")
    expect(await keys.readKeys(bytes)).toEqual(everyTypeRows.map(keys.keyOf))
  })

  it("of several columns of any type match whatever produced the row (a real rounded to 32 bits, -0, bytes)", async () => {
    const composite = rowsFormat("t", everyTypeSchema, partition, ["label", "ratio", "payload", "score", "id"]).keys!
    const read = await composite.readKeys(bytes)
    expect(read).toEqual(everyTypeRows.map(composite.keyOf))
    const row = [...everyTypeRows[0]!]
    row[6] = 0.1 // real: the file holds Math.fround(0.1)
    expect(composite.keyOf(row)).toBe(composite.keyOf(stored([row])[0]!))
    expect(composite.keyOf(everyTypeRows[2]!)).toBe(`["","NaN","\\\\x",0,9223372036854775807]`)
  })

  it("rule out a file by the bounds of a single integral key, and only then", () => {
    const add = statsAdd(everyTypeRows.slice(0, 2)) // ids 1, 2
    expect(keys.mayHold(add, new Set(["[2]"]))).toBe(true)
    expect(keys.mayHold(add, new Set(["[3]", "[0]"]))).toBe(false)
    expect(keys.mayHold(add, new Set(["[null]"]))).toBe(true)
    expect(keys.mayHold({ ...add, stats: null }, new Set(["[3]"]))).toBe(true)
    const extremes = statsAdd(everyTypeRows.slice(2, 3)) // id 2^63-1 only: its bound parses as 2^63
    expect(keys.mayHold(extremes, new Set(["[9223372036854775807]"]))).toBe(true)
    expect(keys.mayHold(extremes, new Set(["[1]"]))).toBe(false)
    const composite = rowsFormat("t", everyTypeSchema, partition, ["id", "label"]).keys!
    expect(composite.mayHold(add, new Set(["[3,\"x\"]"]))).toBe(true)
  })
})

describe("the Delta schema", () => {
  const metadata = format.metadata("table-id", { "delta.appendOnly": "false" }, 7)

  it("types each column, keeps the PostgreSQL type, and appends the derived date partition column", () => {
    const fields = JSON.parse(metadata.schemaString).fields as Array<{ name: string; type: unknown; nullable: boolean; metadata: Record<string, unknown> }>
    expect(fields.map((f) => f.name)).toEqual([...everyTypeSchema.columns.map((c) => c.name), "date"])
    expect(fields.find((f) => f.name === "price")).toEqual({ name: "price", type: "decimal(12,3)", nullable: true, metadata: { pg_type: "numeric(12,3)", pg_type_oid: 1700, pg_nullable: true } })
    expect(fields.find((f) => f.name === "nums")!.type).toEqual({ type: "array", elementType: "integer", containsNull: true })
    expect(fields.every((f) => f.nullable)).toBe(true)
    expect(metadata.partitionColumns).toEqual(["date"])
    expect(metadata.configuration).toEqual({ "delta.appendOnly": "false", "food_orders.key": "id", "food_orders.partition_source": "created_at" })
    expect(format.partitionColumn).toBe("date")
    expect(format.schemaDifference(metadata.schemaString, metadata.partitionColumns)).toBeUndefined()
  })

  it("names the partition column <source>_date when the table has a column named date", () => {
    const schema: TableSchema = { columns: [...everyTypeSchema.columns, { ...everyTypeSchema.columns[10]!, name: "date" }], key: ["id"] }
    expect(datePartition(schema, "created_at")).toEqual({ kind: "date", source: "created_at", column: "created_at_date" })
    expect(datePartition(schema, "label")).toBeInstanceOf(RowsSchemaError)
    expect(rowsFormat("t", everyTypeSchema, noPartition).partitionColumn).toBeNull()
  })

  it("refuses column names Delta cannot hold: invalid characters, names equal but for case", () => {
    expect(deltaNamesProblem(everyTypeSchema)).toBeUndefined()
    const named = (...names: Array<string>): TableSchema => ({ columns: names.map((name) => ({ ...everyTypeSchema.columns[0]!, name })), key: [] })
    expect(deltaNamesProblem(named("id", "first name", "a=b"))).toMatchObject({ reason: "names", columns: ["first name", "a=b"] })
    expect(deltaNamesProblem(named("id", "Name", "name"))).toMatchObject({ reason: "names", columns: ["Name / name"] })
  })

  it("reads back into the same columns, key and partition", () => {
    expect(tableSchemaOfDelta(metadata.schemaString, metadata.partitionColumns, metadata.configuration)).toEqual({ schema: everyTypeSchema, partition })
  })

  it("refuses a table whose columns are not ours", () => {
    const other = rowsFormat("t", withNote, partition).metadata("x", {}, 0)
    expect(format.schemaDifference(other.schemaString, other.partitionColumns)).toMatch(/note:string/)
    expect(format.schemaDifference(metadata.schemaString, [])).toMatch(/partitioned by \[\]/)
  })

  it("partition values are the UTC date of the source, null for a null source", () => {
    const valueOf = partitionValueOf(everyTypeSchema, partition)!
    expect(everyTypeRows.map(valueOf)).toEqual(["2025-01-15", null, "2025-01-16", "2025-01-16"])
    const at = everyTypeSchema.columns.findIndex((c) => c.name === "created_at")
    const row = everyTypeRows[0]!.map((v, i) => (i === at ? -1n : v))
    expect(valueOf(row)).toBe("1969-12-31")
    expect(partitionValueOf(everyTypeSchema, noPartition)).toBeUndefined()
  })
})

describe("schema evolution", () => {
  const retype = (name: string, column: Partial<Column>): TableSchema => ({
    columns: everyTypeSchema.columns.map((c) => (c.name === name ? { ...c, ...column } : c)),
    key: ["id"]
  })

  it("a column added at the end is an addition", () => {
    expect(schemaChange(everyTypeSchema, withNote)).toEqual({ added: [withNote.columns.at(-1)] })
    expect(schemaChange(everyTypeSchema, everyTypeSchema)).toEqual({ added: [] })
    // A change PostgreSQL sees but the lake does not: varchar(10) -> text, both string.
    expect(schemaChange(everyTypeSchema, retype("label", { pgType: "character varying(10)" }))).toEqual({ added: [] })
  })

  it("a dropped (or renamed) column is a problem naming it", () => {
    const dropped = schemaChange(withNote, { columns: withNote.columns.filter((c) => c.name !== "qty"), key: ["id"] })
    expect(dropped).toMatchObject({ _tag: "RowsSchemaError", reason: "dropped", columns: ["qty"] })
    expect(schemaChange(everyTypeSchema, retype("qty", { name: "quantity" }))).toMatchObject({ reason: "dropped", columns: ["qty"] })
  })

  it("a column of another lake type is a problem naming it and both types", () => {
    const change = schemaChange(everyTypeSchema, retype("qty", { pgType: "bigint", type: { kind: "long" } }))
    expect(change).toMatchObject({ reason: "retyped", columns: ["qty: integer -> long"] })
    const precision = schemaChange(everyTypeSchema, retype("price", { type: { kind: "decimal", precision: 14, scale: 3 } }))
    expect(precision).toMatchObject({ reason: "retyped", columns: ["price: decimal(12,3) -> decimal(14,3)"] })
  })

  it("the evolved metaData keeps the table's id and appends the column after the partition column, as Spark's ADD COLUMNS does", () => {
    const before = format.metadata("table-id", {}, 7)
    const after = evolvedMetadata(before, withNote)
    expect(after.id).toBe("table-id")
    expect(after.partitionColumns).toEqual(["date"])
    const names = (JSON.parse(after.schemaString).fields as Array<{ name: string }>).map((f) => f.name)
    expect(names).toEqual([...everyTypeSchema.columns.map((c) => c.name), "date", "note"])
    expect(tableSchemaOfDelta(after.schemaString, after.partitionColumns, after.configuration)).toEqual({ schema: withNote, partition })
    const next = rowsFormat("public.every_type", withNote, partition)
    expect(next.schemaDifference(after.schemaString, after.partitionColumns)).toBeUndefined()
    expect(format.schemaDifference(after.schemaString, after.partitionColumns)).toMatch(/note/)
  })

  it("a file written before the column was added reads it as null", async () => {
    const old = rowFileBytes(format, everyTypeRows)
    const next = rowsFormat("public.every_type", withNote, partition)
    const expected: Array<Array<Value>> = stored(everyTypeRows).map((row) => [...row, null])
    expect(await next.read(old)).toEqual(expected)
    expect(await next.read(old, 2, 4)).toEqual(expected.slice(2, 4))
  })
})
