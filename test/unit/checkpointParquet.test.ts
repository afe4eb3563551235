/**
 * The checkpoint codec (src/table/checkpointParquet.ts): what encodeCheckpoint writes, decodeCheckpoint
 * gives back exactly; the file is the Parquet shape Spark expects (standard MAP and 3-level LIST); and
 * what we cannot read correctly (deletion vectors, V2 checkpoints) is refused by name.
 */
import { parquetMetadata, parquetSchema } from "hyparquet"
import type { SchemaTree } from "hyparquet"
import { parquetWriteBuffer } from "hyparquet-writer"
import { describe, expect, it } from "vitest"
import type { Action, AddFile, RemoveFile } from "../../src/table/actions.ts"
import { decodeCheckpoint, encodeCheckpoint } from "../../src/table/checkpointParquet.ts"

type SchemaElement = NonNullable<Parameters<typeof parquetWriteBuffer>[0]["schema"]>[number]

const schemaString = JSON.stringify({
  type: "struct",
  fields: [
    { name: "order_id", type: "long", nullable: true, metadata: {} },
    { name: "amount", type: "decimal(10,2)", nullable: true, metadata: {} },
    { name: "created_at", type: "timestamp", nullable: true, metadata: {} },
    { name: "date", type: "date", nullable: true, metadata: {} }
  ]
})

const day = (i: number) => `2025-01-${String(10 + (i % 20)).padStart(2, "0")}`

const add = (i: number): AddFile => ({
  path: `date=${day(i)}/part-${String(i).padStart(5, "0")}-${(i * 2654435761 % 2 ** 32).toString(16)}.c000.snappy.parquet`,
  partitionValues: { date: day(i) },
  size: 1_000 + i * 37,
  modificationTime: 1_795_621_484_011 + i,
  dataChange: false,
  stats: JSON.stringify({
    numRecords: 100 + i,
    minValues: { order_id: i * 1000, amount: 5.0, created_at: `${day(i)}T00:00:00.123Z` },
    maxValues: { order_id: i * 1000 + 99 + i, amount: 99.99, created_at: `${day(i)}T23:59:59.999Z` },
    nullCount: { order_id: 0, amount: i % 3, created_at: 0 }
  }),
  tags: { INSERTION_TIME: String(1_795_621_484_000_000 + i), ZCUBE_ID: `z-${i}` }
})

const realistic: ReadonlyArray<Action> = [
  { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
  {
    metaData: {
      id: "646b02e9-da0a-4595-ad34-c7b436ec5746",
      name: "orders",
      description: "food orders, one row per captured order",
      format: { provider: "parquet", options: {} },
      schemaString,
      partitionColumns: ["date"],
      configuration: { "delta.appendOnly": "false", "delta.checkpointInterval": "10", "delta.logRetentionDuration": "interval 30 days" },
      createdTime: 1_795_621_484_021
    }
  },
  { txn: { appId: "orders-0", version: 100, lastUpdated: 1_795_621_484_021 } },
  { txn: { appId: "orders-1", version: 9_007_199_254_740_991 } },
  { txn: { appId: "orders-2", version: 0, lastUpdated: 1_795_621_484_099 } },
  ...Array.from({ length: 500 }, (_, i): Action => ({ add: add(i) })),
  { remove: { path: "date=2025-01-01/old-1.parquet", dataChange: false } },
  {
    remove: {
      path: "date=2025-01-02/old-2.parquet",
      deletionTimestamp: 1_795_621_000_000,
      dataChange: false,
      extendedFileMetadata: true,
      partitionValues: { date: "2025-01-02" },
      size: 4_321
    }
  },
  { remove: { path: "date=2025-01-03/old-3.parquet", deletionTimestamp: 1_795_621_000_001, dataChange: true, partitionValues: {} } }
]

/** The tree of the schema, as a readable outline: `name: TYPE/CONVERTED repetition`. */
const outline = (node: SchemaTree, indent = ""): Array<string> => {
  const e = node.element
  const line = `${indent}${e.repetition_type ?? ""} ${e.type ?? "group"}${e.converted_type ? `(${e.converted_type})` : ""} ${e.name}`
  return [line, ...node.children.flatMap((child) => outline(child, `${indent}  `))]
}

describe("checkpoint Parquet codec", () => {
  it("round-trips a realistic checkpoint exactly, in order", async () => {
    const bytes = encodeCheckpoint(realistic)
    expect(await decodeCheckpoint(bytes)).toEqual(realistic)
    const metadata = parquetMetadata(bytes.buffer as ArrayBuffer)
    expect(metadata.num_rows).toBe(BigInt(realistic.length))
    expect(metadata.row_groups.every((group) => group.columns.every((c) => c.meta_data?.codec === "SNAPPY"))).toBe(true)
  })

  it("writes the protocol's checkpoint schema with standard MAPs and 3-level LISTs", () => {
    const schema = parquetSchema(parquetMetadata(encodeCheckpoint(realistic).buffer as ArrayBuffer))
    expect(schema.children.map((c) => c.element.name)).toEqual(["txn", "add", "remove", "metaData", "protocol"])
    const text = outline(schema).join("\n")
    expect(text).toContain(
      [
        "  OPTIONAL group add",
        "    OPTIONAL BYTE_ARRAY(UTF8) path",
        "    OPTIONAL group(MAP) partitionValues",
        "      REPEATED group key_value",
        "        REQUIRED BYTE_ARRAY(UTF8) key",
        "        OPTIONAL BYTE_ARRAY(UTF8) value",
        "    OPTIONAL INT64 size",
        "    OPTIONAL INT64 modificationTime",
        "    OPTIONAL BOOLEAN dataChange",
        "    OPTIONAL BYTE_ARRAY(UTF8) stats",
        "    OPTIONAL group(MAP) tags"
      ].join("\n")
    )
    expect(text).toContain(
      ["    OPTIONAL group(LIST) partitionColumns", "      REPEATED group list", "        OPTIONAL BYTE_ARRAY(UTF8) element"].join("\n")
    )
    expect(text).toContain(["  OPTIONAL group protocol", "    OPTIONAL INT32 minReaderVersion", "    OPTIONAL INT32 minWriterVersion"].join("\n"))
    expect(text).not.toContain("readerFeatures")
  })

  it("keeps empty maps apart from absent ones, and null partition values", async () => {
    const actions: ReadonlyArray<Action> = [
      { add: { path: "a", partitionValues: {}, size: 1, modificationTime: 2, dataChange: true, tags: {} } },
      { add: { path: "date=__HIVE_DEFAULT_PARTITION__/b", partitionValues: { date: null }, size: 0, modificationTime: 0, dataChange: false } },
      { add: { path: "c", partitionValues: { date: "2025-01-15", region: null, empty: "" }, size: 3, modificationTime: 4, dataChange: true } },
      { remove: { path: "d", dataChange: false, partitionValues: { date: null }, size: 0 } },
      {
        metaData: {
          id: "x",
          format: { provider: "parquet", options: {} },
          schemaString: "{}",
          partitionColumns: [],
          configuration: {}
        }
      }
    ]
    expect(await decodeCheckpoint(encodeCheckpoint(actions))).toEqual(actions)
  })

  it("keeps unicode paths, keys and values", async () => {
    const add: AddFile = {
      path: "date=2025-01-15/Zo%C3%AB%20caf%C3%A9-ümlaut-日本-🍕.parquet",
      partitionValues: { "régiön": "東京 🍣", date: "2025-01-15" },
      size: 7,
      modificationTime: 8,
      dataChange: true,
      stats: JSON.stringify({ numRecords: 1, minValues: { customer_name: "Zoë \"Q\" O'Brien\t\n" } }),
      tags: { "ключ": "значение" }
    }
    const remove: RemoveFile = { path: "ścieżka/ファイル.parquet", dataChange: false, deletionTimestamp: 1 }
    const actions: ReadonlyArray<Action> = [{ add }, { remove }, { txn: { appId: "tópico-0", version: 1 } }]
    expect(await decodeCheckpoint(encodeCheckpoint(actions))).toEqual(actions)
  })

  it("writes protocol features only when there are some", async () => {
    const actions: ReadonlyArray<Action> = [
      { protocol: { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ["timestampNtz"], writerFeatures: ["timestampNtz", "appendOnly"] } }
    ]
    const bytes = encodeCheckpoint(actions)
    expect(outline(parquetSchema(parquetMetadata(bytes.buffer as ArrayBuffer))).join("\n")).toContain("OPTIONAL group(LIST) readerFeatures")
    expect(await decodeCheckpoint(bytes)).toEqual(actions)
  })

  it("drops commitInfo and actions of other features; an empty list gives an empty checkpoint", async () => {
    const txn: Action = { txn: { appId: "a", version: 1 } }
    expect(await decodeCheckpoint(encodeCheckpoint([{ commitInfo: { operation: "WRITE" } }, txn, { other: "cdc", value: { path: "x" } }])))
      .toEqual([txn])
    expect(await decodeCheckpoint(encodeCheckpoint([]))).toEqual([])
  })

  it("refuses numbers a checkpoint cannot hold", () => {
    expect(() => encodeCheckpoint([{ txn: { appId: "a", version: 1.5 } }])).toThrow(/txn a: version: not a safe integer/)
    expect(() => encodeCheckpoint([{ add: { ...add(1), size: 2 ** 60 } }])).toThrow(/size: not a safe integer/)
  })
})

/** A checkpoint-shaped file as another writer might make it: extra columns and fields. */
const foreign = (rows: ReadonlyArray<Record<string, unknown>>, extraAdd: ReadonlyArray<SchemaElement> = []): Uint8Array => {
  const str = (name: string): SchemaElement => ({ name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" })
  const long = (name: string): SchemaElement => ({ name, type: "INT64", repetition_type: "OPTIONAL" })
  const schema: Array<SchemaElement> = [
    { name: "spark_schema", num_children: 4 },
    { name: "txn", repetition_type: "OPTIONAL", num_children: 2 },
    str("appId"),
    long("version"),
    { name: "add", repetition_type: "OPTIONAL", num_children: 5 + extraAdd.length },
    str("path"),
    long("size"),
    long("modificationTime"),
    { name: "dataChange", type: "BOOLEAN", repetition_type: "OPTIONAL" },
    { name: "deletionVector", repetition_type: "OPTIONAL", num_children: 2 },
    str("storageType"),
    str("pathOrInlineDv"),
    ...extraAdd,
    { name: "sidecar", repetition_type: "OPTIONAL", num_children: 2 },
    str("path"),
    long("sizeInBytes"),
    { name: "domainMetadata", repetition_type: "OPTIONAL", num_children: 3 },
    str("domain"),
    str("configuration"),
    { name: "removed", type: "BOOLEAN", repetition_type: "OPTIONAL" }
  ]
  const column = (name: string) => rows.map((row) => row[name] ?? null)
  return new Uint8Array(
    parquetWriteBuffer({
      schema,
      columnData: ["txn", "add", "sidecar", "domainMetadata"].map((name) => ({ name, data: column(name) }))
    })
  )
}

describe("decoding checkpoints of other writers", () => {
  const plainAdd = { path: "p", size: 5n, modificationTime: 6n, dataChange: false, deletionVector: null }

  it("keeps unknown actions as `other`, unknown add fields as they came, and tolerates absent maps", async () => {
    const bytes = foreign(
      [
        { txn: { appId: "a", version: 3n } },
        { add: { ...plainAdd, baseRowId: 17n } },
        { domainMetadata: { domain: "delta.rowTracking", configuration: "{}", removed: false } }
      ],
      [{ name: "baseRowId", type: "INT64", repetition_type: "OPTIONAL" }]
    )
    expect(await decodeCheckpoint(bytes)).toEqual([
      { txn: { appId: "a", version: 3 } },
      { add: { path: "p", partitionValues: {}, size: 5, modificationTime: 6, dataChange: false, baseRowId: 17 } },
      { other: "domainMetadata", value: { domain: "delta.rowTracking", configuration: "{}", removed: false } }
    ])
  })

  it("refuses a file with a deletion vector", async () => {
    const bytes = foreign([{ add: { ...plainAdd, deletionVector: { storageType: "u", pathOrInlineDv: "ab^-aqEH.-t@S}K{vb[*k^" } } }])
    await expect(decodeCheckpoint(bytes)).rejects.toThrow(/add p: has a deletion vector \(reader feature deletionVectors is not supported\)/)
  })

  it("refuses a V2 checkpoint", async () => {
    const bytes = foreign([{ sidecar: { path: "3a0d65cd.parquet", sizeInBytes: 10n } }])
    await expect(decodeCheckpoint(bytes)).rejects.toThrow(/V2 checkpoints \(table feature v2Checkpoint\) are not supported/)
  })

  it("refuses an int64 beyond a JS number's exact range", async () => {
    const bytes = foreign([{ txn: { appId: "a", version: 2n ** 53n + 1n } }])
    await expect(decodeCheckpoint(bytes)).rejects.toThrow(/txn a: version: 9007199254740993 is beyond/)
  })
})
