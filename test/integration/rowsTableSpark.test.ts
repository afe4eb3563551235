/**
 * The table format of a captured table of any schema (src/table/rowsFormat.ts) against real readers:
 * a Delta table written by hand with it (partitioned by the date of a timestamp column, a column of
 * every type, rows at the edges of each), then evolved by a new metaData (ADD COLUMN) and a file that
 * has the column. Spark 4.0.1 + delta-spark 4.0.0 must report each column's type and give back the
 * exact values row by row, count from the stats and filter by them without losing rows; DuckDB must
 * read the files with the right types.
 */
import { randomUUID } from "node:crypto"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DuckDBInstance } from "@duckdb/node-api"
import { parquetMetadata, parquetSchema } from "hyparquet"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ColumnType, Row, Scalar, ScalarType, TableSchema, Value } from "../../src/domain/columns.ts"
import { type Action, type AddFile, parseCommit, serializeCommit } from "../../src/table/actions.ts"
import { partitionValueOf, rowsFormat } from "../../src/table/rowsFormat.ts"
import { datePartition, evolvedMetadata, type PartitionSpec } from "../../src/table/rowsSchema.ts"
import { rowFileBytes, type TableFormat } from "../../src/table/tableFormat.ts"
import { everyTypeRows, everyTypeSchema, withNote } from "../support/rowsFixture.ts"
import { type SparkSession, sparkSkipReason, startSpark } from "../support/spark.ts"

const partition = datePartition(everyTypeSchema, "created_at") as PartitionSpec
const before = rowsFormat("public.every_type", everyTypeSchema, partition)
const after = rowsFormat("public.every_type", withNote, partition)

const laterCreated = BigInt(Date.parse("2025-01-17T08:00:00Z")) * 1000n
const createdIndex = everyTypeSchema.columns.findIndex((c) => c.name === "created_at")
const ratioIndex = everyTypeSchema.columns.findIndex((c) => c.name === "ratio")

/**
 * Rows added after the column, in one file: one with a note, one without; their keys between the old
 * ones. Their reals are 1.5 and NaN: Spark orders NaN above every number, so Parquet bounds that
 * leave NaN out (as the format says they must) would skip this file for `ratio > 2`.
 */
const laterRows: ReadonlyArray<Row> = [
  [...everyTypeRows[0]!.map((v, i) => (i === 0 ? 3n : i === createdIndex ? laterCreated : v)), "added later ✓"],
  [4n, ...everyTypeRows[1]!.slice(1).map((v, i) => (i + 1 === createdIndex ? laterCreated : i + 1 === ratioIndex ? Number.NaN : v)), null]
]

const logFile = (version: number) => `${String(version).padStart(20, "0")}.json`

/** Writes one data file per partition value of `rows`, and returns their adds with our stats. */
const writeFiles = (root: string, format: TableFormat<Row>, schema: TableSchema, rows: ReadonlyArray<Row>): Array<AddFile> => {
  const valueOf = partitionValueOf(schema, partition)!
  const byDate = new Map<string | null, Array<Row>>()
  for (const row of rows) byDate.set(valueOf(row), [...(byDate.get(valueOf(row)) ?? []), row])
  return [...byDate].map(([date, group]) => {
    const dir = `date=${date ?? "__HIVE_DEFAULT_PARTITION__"}`
    const file = `${dir}/part-00000-${randomUUID()}.c000.snappy.parquet`
    mkdirSync(join(root, dir), { recursive: true })
    writeFileSync(join(root, file), rowFileBytes(format, group))
    const stat = statSync(join(root, file))
    return {
      path: file.split("/").map(encodeURIComponent).join("/"),
      partitionValues: { date },
      size: stat.size,
      modificationTime: Math.floor(stat.mtimeMs),
      dataChange: true,
      stats: format.stats().add(group).json()
    }
  })
}

/** Spark's name of a type (`DataType.simpleString`). */
const sparkType = (type: ColumnType): string => {
  if (type.kind === "array") return `array<${sparkType(type.element)}>`
  const names: Record<string, string> = { short: "smallint", integer: "int", long: "bigint" }
  return type.kind === "decimal" ? `decimal(${type.precision},${type.scale})` : names[type.kind] ?? type.kind
}

/** What DuckDB's DESCRIBE says of a type. */
const duckType = (type: ColumnType): string => {
  if (type.kind === "array") return `${duckType(type.element)}[]`
  const names: Record<string, string> = {
    short: "SMALLINT",
    integer: "INTEGER",
    long: "BIGINT",
    float: "FLOAT",
    double: "DOUBLE",
    boolean: "BOOLEAN",
    string: "VARCHAR",
    date: "DATE",
    timestamp: "TIMESTAMP WITH TIME ZONE",
    binary: "BLOB"
  }
  return type.kind === "decimal" ? `DECIMAL(${type.precision},${type.scale})` : names[type.kind]!
}

const decimalText = (unscaled: bigint, scale: number) => {
  const abs = unscaled < 0n ? -unscaled : unscaled
  const unit = 10n ** BigInt(scale)
  return `${unscaled < 0n ? "-" : ""}${abs / unit}${scale === 0 ? "" : `.${(abs % unit).toString().padStart(scale, "0")}`}`
}

/** java.time.Instant.toString: the fraction in groups of three digits, none when zero. */
const instantText = (micros: bigint) => {
  const millis = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n)
  const subMillis = Number(micros - millis * 1000n)
  const iso = new Date(Number(millis)).toISOString() // ...ss.mmmZ
  const ms = iso.slice(20, 23)
  const fraction = subMillis !== 0 ? `.${ms}${String(subMillis).padStart(3, "0")}` : ms !== "000" ? `.${ms}` : ""
  return `${iso.slice(0, 19)}${fraction}Z`
}

const dayText = (days: number) => new Date(days * 86_400_000).toISOString().slice(0, 10)

/** A value as the Spark harness renders it (test/support/spark/SparkSql.java). */
const sparkScalar = (type: ScalarType, value: Scalar): unknown => {
  if (value === null) return null
  switch (type.kind) {
    case "decimal":
      return decimalText(value as bigint, type.scale)
    case "float":
    case "double": {
      const n = type.kind === "float" ? Math.fround(value as number) : (value as number)
      return Number.isNaN(n) ? "NaN" : n === Infinity ? "Infinity" : n === -Infinity ? "-Infinity" : n
    }
    case "date":
      return dayText(value as number)
    case "timestamp":
      return instantText(value as bigint)
    case "binary":
      return Buffer.from(value as Uint8Array).toString("base64")
    case "long":
      return String(value)
    default:
      return value
  }
}

const sparkValue = (type: ColumnType, value: Value): unknown =>
  type.kind === "array"
    ? value === null ? null : (value as ReadonlyArray<Scalar>).map((v) => sparkScalar(type.element, v))
    : sparkScalar(type, value as Scalar)

/** Spark's float comes through JSON as a double: rounded back to the 32 bits it is. */
const sparkActual = (type: ColumnType, value: unknown): unknown => {
  const scalar = (t: ScalarType, v: unknown) => (t.kind === "float" && typeof v === "number" ? Math.fround(v) : v)
  if (type.kind === "array") return Array.isArray(value) ? value.map((v) => scalar(type.element, v)) : value
  return scalar(type, value)
}

const skipReason = sparkSkipReason()

describe.skipIf(skipReason !== null)(`a captured table of every type, read by Spark and DuckDB${skipReason === null ? "" : ` (skipped: ${skipReason})`}`, () => {
  let spark: SparkSession
  let dir: string
  let root: string
  const files: Array<string> = []

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "rows-table-spark-"))
    root = join(dir, "every_type")
    mkdirSync(join(root, "_delta_log"), { recursive: true })
    const now = Date.now()
    const metadata = before.metadata(randomUUID(), {}, now)
    const firstAdds = writeFiles(root, before, everyTypeSchema, everyTypeRows)
    const commit0: Array<Action> = [{ protocol: before.protocol }, { metaData: metadata }, ...firstAdds.map((add) => ({ add }))]
    const laterAdds = writeFiles(root, after, withNote, laterRows)
    const commit1: Array<Action> = [{ metaData: evolvedMetadata(metadata, withNote) }, ...laterAdds.map((add) => ({ add }))]
    writeFileSync(join(root, "_delta_log", logFile(0)), serializeCommit(commit0))
    writeFileSync(join(root, "_delta_log", logFile(1)), serializeCommit(commit1))
    files.push(...[...firstAdds, ...laterAdds].map((add) => join(root, decodeURIComponent(add.path))))
    spark = await startSpark()
  })

  afterAll(async () => {
    await spark?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const table = () => `delta.\`${root}\``

  it("Spark reports each column's type and gives back every value, old rows with null in the added column", async () => {
    const result = await spark.sql(`SELECT *, CAST(id AS STRING) AS id_text FROM ${table()} ORDER BY id`)
    const columns = withNote.columns
    // Spark's order is the schemaString's: the partition column, then the column added after it.
    const names = [...everyTypeSchema.columns.map((c) => c.name), "date", "note", "id_text"]
    expect(result.columns).toEqual(names)
    expect(result.types).toEqual([...everyTypeSchema.columns.map((c) => sparkType(c.type)), "date", "string", "string"])

    const all: Array<Row> = [...everyTypeRows.map((row) => [...row, null]), ...laterRows].sort((a, b) =>
      (a[0] as bigint) < (b[0] as bigint) ? -1 : 1
    )
    const valueOf = partitionValueOf(withNote, partition)!
    const expected = all.map((row) => [
      ...everyTypeSchema.columns.map((c, i) => (c.name === "id" ? "(see id_text)" : sparkValue(c.type, row[i]!))),
      valueOf(row),
      row[columns.length - 1],
      String(row[0])
    ])
    const actual = result.rows.map((row) =>
      row.map((v, i) => (i === 0 ? "(see id_text)" : i < everyTypeSchema.columns.length ? sparkActual(everyTypeSchema.columns[i]!.type, v) : v))
    )
    expect(actual).toEqual(expected)
  })

  it("Spark counts from the stats and filters on the key and on bounded columns without losing a row", async () => {
    const count = await spark.sql(`SELECT count(*) FROM ${table()}`)
    expect(Number(count.rows[0]![0])).toBe(everyTypeRows.length + laterRows.length)
    const byKey = await spark.sql(`SELECT CAST(id AS STRING), note FROM ${table()} WHERE id = 9223372036854775807 OR id = 3 ORDER BY id`)
    expect(byKey.rows).toEqual([["3", laterRows[0]![withNote.columns.length - 1]], ["9223372036854775807", null]])
    const none = await spark.sql(`SELECT count(*) FROM ${table()} WHERE id > 4 AND id < 1000`)
    expect(Number(none.rows[0]![0])).toBe(0)
    // The exact maximum of created_at (sub-millisecond; the stats hold it floored to the millisecond).
    const latest = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE created_at >= TIMESTAMP'2025-01-16 23:59:59.999999'`)
    const since = BigInt(Date.parse("2025-01-16T23:59:59.999Z")) * 1000n + 999n
    const expectedLatest = [...everyTypeRows, ...laterRows].filter((row) => row[createdIndex] !== null && (row[createdIndex] as bigint) >= since)
    expect(expectedLatest.map((row) => row[0])).toContain(9_223_372_036_854_775_807n) // the file whose floored max is below `since`
    expect(latest.rows.map((r) => String(r[0])).sort()).toEqual(expectedLatest.map((row) => String(row[0])).sort())
    // The exact minimum (sub-millisecond; floored in the stats, a lower bound).
    const earliest = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE created_at <= TIMESTAMP'2025-01-15 10:00:00.123456'`)
    expect(earliest.rows).toEqual([[String(everyTypeRows[0]![0])]])
    const bornIndex = everyTypeSchema.columns.findIndex((c) => c.name === "born")
    const ancient = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE born < DATE'0002-01-01'`)
    expect(ancient.rows).toEqual(everyTypeRows.filter((row) => row[bornIndex] !== null && (row[bornIndex] as number) < Date.parse("0002-01-01T00:00:00Z") / 86_400_000).map((row) => [String(row[0])]))
    expect(ancient.rows).toHaveLength(1)
    const negativeBig = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE big_dec < -1`)
    expect(negativeBig.rows).toEqual([["-9223372036854775808"]])
    const bigDec = everyTypeRows[2]![5] as bigint
    const largest = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE big_dec = ${decimalText(bigDec, 10)}BD`)
    expect(largest.rows).toEqual([["9223372036854775807"]])
    const negative = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE price < 0 AND tiny_dec < 0 ORDER BY id`)
    expect(negative.rows).toEqual([["-9223372036854775808"]])
    const nulls = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE date IS NULL ORDER BY id`)
    expect(nulls.rows).toEqual([["2"]])
    const all = [...everyTypeRows, ...laterRows]
    const aboveTwo = all.filter((row) => typeof row[ratioIndex] === "number" && (Number.isNaN(row[ratioIndex]) || (row[ratioIndex] as number) > 2))
    const ratio = await spark.sql(`SELECT CAST(id AS STRING) FROM ${table()} WHERE ratio > 2`)
    expect(ratio.rows.map((r) => String(r[0])).sort()).toEqual(aboveTwo.map((row) => String(row[0])).sort())
    expect(aboveTwo.map((row) => row[0])).toContain(4n)
  })

  it("DuckDB reads the files with the right types and values", async () => {
    const instance = await DuckDBInstance.create(":memory:")
    const connection = await instance.connect()
    try {
      const list = `[${files.map((f) => `'${f.replaceAll("'", "''")}'`).join(", ")}]`
      const source = `read_parquet(${list}, union_by_name = true, hive_partitioning = false)`
      const describe = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)
      const types = describe.getRowsJson().map((row) => [row[0], row[1]])
      expect(types).toEqual(withNote.columns.map((c) => [c.name, duckType(c.type)]))
      const values = await connection.runAndReadAll(
        `SELECT CAST(id AS VARCHAR), CAST(big_dec AS VARCHAR), CAST(price AS VARCHAR), CAST(born AS VARCHAR), note FROM ${source} ORDER BY id`
      )
      const all: Array<Row> = [...everyTypeRows.map((row) => [...row, null]), ...laterRows].sort((a, b) =>
        (a[0] as bigint) < (b[0] as bigint) ? -1 : 1
      )
      expect(values.getRowsJson()).toEqual(all.map((row) => [
        String(row[0]),
        row[5] === null ? null : decimalText(row[5] as bigint, 10),
        row[3] === null ? null : decimalText(row[3] as bigint, 3),
        row[10] === null ? null : dayText(row[10] as number),
        row[withNote.columns.length - 1]
      ]))
    } finally {
      connection.closeSync()
      instance.closeSync()
    }
  })

  it("our reader gives back exactly what Spark wrote (INT96 timestamps, its lists and decimals), and our keys use Spark's stats", async () => {
    await spark.sql(
      `INSERT INTO ${table()} SELECT 5L, CAST(-7 AS SMALLINT), -123, CAST('-1234.567' AS DECIMAL(12,3)), CAST('1.25' AS DECIMAL(5,2)),
       CAST('-12345678901234567890.0000000001' AS DECIMAL(38,10)), CAST(2.5 AS FLOAT), CAST('NaN' AS DOUBLE), false, 'ß ✓',
       DATE'1999-12-31', TIMESTAMP'2025-01-18 12:34:56.789012', X'00FF', array('p', NULL), array(NULL, 9),
       array(CAST('-0.01' AS DECIMAL(20,2))), array(TIMESTAMP'1970-01-01 00:00:00.000001'), 'r', DATE'2025-01-18', 'spark wrote me'`
    )
    const actions = parseCommit(readFileSync(join(root, "_delta_log", logFile(2)), "utf8"))
    const adds = actions.flatMap((action) => ("add" in action ? [action.add] : []))
    expect(adds).toHaveLength(1)
    const bytes = new Uint8Array(readFileSync(join(root, decodeURIComponent(adds[0]!.path))))
    const written = parquetSchema(parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer))
    expect(written.children.find((c) => c.element.name === "created_at")!.element.type).toBe("INT96")
    const micros = (iso: string, extra: bigint) => BigInt(Date.parse(iso)) * 1000n + extra
    expect(await after.read(bytes)).toEqual([[
      5n,
      -7,
      -123,
      -1234567n,
      125n,
      -123456789012345678900000000001n,
      2.5,
      Number.NaN,
      false,
      "ß ✓",
      Date.parse("1999-12-31T00:00:00Z") / 86_400_000,
      micros("2025-01-18T12:34:56.789Z", 12n),
      new Uint8Array([0, 255]),
      ["p", null],
      [null, 9],
      [-1n],
      [1n],
      "r",
      "spark wrote me"
    ]])
    expect(await after.keys!.readKeys(bytes)).toEqual(["[5]"])
    expect(after.keys!.mayHold(adds[0]!, new Set(["[5]"]))).toBe(true)
    expect(after.keys!.mayHold(adds[0]!, new Set(["[6]", "[4]"]))).toBe(false)
  })
})
