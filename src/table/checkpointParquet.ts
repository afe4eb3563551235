import { parquetReadObjects } from "hyparquet"
import { type ColumnSource, parquetWriteBuffer } from "hyparquet-writer"
import type { Action, AddFile, Metadata, Protocol, RemoveFile, Txn } from "./actions.ts"
import { parquetCreatedBy } from "./engine.ts"

/**
 * The Parquet form of a classic single-file checkpoint, `<version>.checkpoint.parquet` (PROTOCOL.md,
 * "Checkpoints", "Checkpoint Schema"): one row per action, one optional struct column per action kind,
 * exactly one of them non-null in a row. Maps are standard Parquet MAPs (repeated `key_value` group,
 * required key, optional value) and lists standard 3-level LISTs, both as Spark writes and reads them.
 */

export class CheckpointError extends Error {
  override readonly name = "CheckpointError"
}

// ---------------------------------------------------------------------------------------------------
// Schema

/** hyparquet-writer's own (nested) hyparquet's schema element: a different copy from the reader's. */
type SchemaElement = NonNullable<Parameters<typeof parquetWriteBuffer>[0]["schema"]>[number]

const string = (name: string): SchemaElement => ({
  name,
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  logical_type: { type: "STRING" },
  repetition_type: "OPTIONAL"
})
const long = (name: string): SchemaElement => ({ name, type: "INT64", repetition_type: "OPTIONAL" })
const int = (name: string): SchemaElement => ({ name, type: "INT32", repetition_type: "OPTIONAL" })
const boolean = (name: string): SchemaElement => ({ name, type: "BOOLEAN", repetition_type: "OPTIONAL" })

/** A flattened (depth-first) list of schema elements for a group and its descendants. */
type Node = ReadonlyArray<SchemaElement>

const struct = (name: string, children: ReadonlyArray<Node>): Node => [
  { name, repetition_type: "OPTIONAL", num_children: children.length },
  ...children.flat()
]

/** map<string,string>: `optional group name (MAP) { repeated group key_value { required key; optional value } }`. */
const stringMap = (name: string): Node => [
  { name, repetition_type: "OPTIONAL", converted_type: "MAP", logical_type: { type: "MAP" }, num_children: 1 },
  { name: "key_value", repetition_type: "REPEATED", num_children: 2 },
  { ...string("key"), repetition_type: "REQUIRED" },
  string("value")
]

/** array<string>: `optional group name (LIST) { repeated group list { optional element } }`. */
const stringList = (name: string): Node => [
  { name, repetition_type: "OPTIONAL", converted_type: "LIST", logical_type: { type: "LIST" }, num_children: 1 },
  { name: "list", repetition_type: "REPEATED", num_children: 1 },
  string("element")
]

const txnColumn = struct("txn", [[string("appId")], [long("version")], [long("lastUpdated")]])

const addColumn = struct("add", [
  [string("path")],
  stringMap("partitionValues"),
  [long("size")],
  [long("modificationTime")],
  [boolean("dataChange")],
  [string("stats")],
  stringMap("tags")
])

/** Tombstones carry no stats and no tags in checkpoints (PROTOCOL.md, "Checkpoint Schema"). */
const removeColumn = struct("remove", [
  [string("path")],
  [long("deletionTimestamp")],
  [boolean("dataChange")],
  [boolean("extendedFileMetadata")],
  stringMap("partitionValues"),
  [long("size")]
])

const metaDataColumn = struct("metaData", [
  [string("id")],
  [string("name")],
  [string("description")],
  struct("format", [[string("provider")], stringMap("options")]),
  [string("schemaString")],
  stringList("partitionColumns"),
  stringMap("configuration"),
  [long("createdTime")]
])

/** readerFeatures/writerFeatures only when some protocol has them (required with reader 3 / writer 7). */
const protocolColumn = (features: boolean): Node =>
  struct("protocol", [
    [int("minReaderVersion")],
    [int("minWriterVersion")],
    ...(features ? [stringList("readerFeatures"), stringList("writerFeatures")] : [])
  ])

// ---------------------------------------------------------------------------------------------------
// Encoding

const toLong = (value: number, what: string): bigint => {
  if (!Number.isSafeInteger(value)) throw new CheckpointError(`${what}: not a safe integer (${value})`)
  return BigInt(value)
}
const optionalLong = (value: number | null | undefined, what: string): bigint | null =>
  value === null || value === undefined ? null : toLong(value, what)
const orNull = <A>(value: A | null | undefined): A | null => (value === undefined ? null : value)

const txnRow = (txn: Txn) => ({
  appId: txn.appId,
  version: toLong(txn.version, `txn ${txn.appId}: version`),
  lastUpdated: optionalLong(txn.lastUpdated, `txn ${txn.appId}: lastUpdated`)
})

const addRow = (add: AddFile) => ({
  path: add.path,
  partitionValues: add.partitionValues,
  size: toLong(add.size, `add ${add.path}: size`),
  modificationTime: toLong(add.modificationTime, `add ${add.path}: modificationTime`),
  dataChange: add.dataChange,
  stats: orNull(add.stats),
  tags: orNull(add.tags)
})

const removeRow = (remove: RemoveFile) => ({
  path: remove.path,
  deletionTimestamp: optionalLong(remove.deletionTimestamp, `remove ${remove.path}: deletionTimestamp`),
  dataChange: remove.dataChange,
  extendedFileMetadata: orNull(remove.extendedFileMetadata),
  partitionValues: orNull(remove.partitionValues),
  size: optionalLong(remove.size, `remove ${remove.path}: size`)
})

const metaDataRow = (metaData: Metadata) => ({
  id: metaData.id,
  name: orNull(metaData.name),
  description: orNull(metaData.description),
  format: { provider: metaData.format.provider, options: metaData.format.options },
  schemaString: metaData.schemaString,
  partitionColumns: metaData.partitionColumns,
  configuration: metaData.configuration,
  createdTime: optionalLong(metaData.createdTime, "metaData: createdTime")
})

const protocolRow = (protocol: Protocol) => {
  for (const [field, value] of [["minReaderVersion", protocol.minReaderVersion], ["minWriterVersion", protocol.minWriterVersion]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
      throw new CheckpointError(`protocol: ${field} is not an int (${value})`)
    }
  }
  return {
    minReaderVersion: protocol.minReaderVersion,
    minWriterVersion: protocol.minWriterVersion,
    readerFeatures: orNull(protocol.readerFeatures),
    writerFeatures: orNull(protocol.writerFeatures)
  }
}

/**
 * A classic checkpoint's bytes: one row per action, in the given order. `commitInfo` and actions of
 * features we do not implement (`other`) are not part of a checkpoint and are dropped.
 */
export const encodeCheckpoint = (actions: ReadonlyArray<Action>): Uint8Array => {
  const kept = actions.filter((action) => !("other" in action) && !("commitInfo" in action))
  const n = kept.length
  const txn = new Array<unknown>(n).fill(null)
  const add = new Array<unknown>(n).fill(null)
  const remove = new Array<unknown>(n).fill(null)
  const metaData = new Array<unknown>(n).fill(null)
  const protocol = new Array<unknown>(n).fill(null)
  let features = false
  for (let i = 0; i < n; i++) {
    const action = kept[i]!
    if ("txn" in action) txn[i] = txnRow(action.txn)
    else if ("add" in action) add[i] = addRow(action.add)
    else if ("remove" in action) remove[i] = removeRow(action.remove)
    else if ("metaData" in action) metaData[i] = metaDataRow(action.metaData)
    else if ("protocol" in action) {
      protocol[i] = protocolRow(action.protocol)
      features ||= action.protocol.readerFeatures !== undefined || action.protocol.writerFeatures !== undefined
    }
  }
  const columns: ReadonlyArray<Node> = [txnColumn, addColumn, removeColumn, metaDataColumn, protocolColumn(features)]
  const schema: Array<SchemaElement> = [{ name: "spark_schema", num_children: columns.length }, ...columns.flat()]
  const columnData: Array<ColumnSource> = [
    { name: "txn", data: txn },
    { name: "add", data: add },
    { name: "remove", data: remove },
    { name: "metaData", data: metaData },
    { name: "protocol", data: protocol }
  ]
  return new Uint8Array(
    parquetWriteBuffer({ schema, columnData, codec: "SNAPPY", createdBy: parquetCreatedBy })
  )
}

// ---------------------------------------------------------------------------------------------------
// Decoding

type Row = Record<string, unknown>

const isPresent = (value: unknown): boolean => value !== null && value !== undefined
const isRecord = (value: unknown): value is Row => typeof value === "object" && value !== null && !Array.isArray(value)

/** INT64 arrives as bigint: a JS number when it is exact, an error when not. */
const toNumber = (value: unknown, what: string): number => {
  if (typeof value === "number") return value
  if (typeof value === "bigint") {
    const n = Number(value)
    if (!Number.isSafeInteger(n)) throw new CheckpointError(`${what}: ${value} is beyond a JS number's exact range`)
    return n
  }
  throw new CheckpointError(`${what}: expected a number, got ${typeof value}`)
}

/** Any decoded value as plain data: bigints as numbers (exact or an error), Dates kept. */
const plain = (value: unknown, what: string): unknown => {
  if (typeof value === "bigint") return toNumber(value, what)
  if (Array.isArray(value)) return value.map((v) => plain(v, what))
  if (value instanceof Date || value instanceof Uint8Array) return value
  if (isRecord(value)) {
    const out: Row = {}
    for (const [key, v] of Object.entries(value)) out[key] = v === undefined ? null : plain(v, `${what}.${key}`)
    return out
  }
  return value
}

const need = (ok: boolean, what: string) => {
  if (!ok) throw new CheckpointError(what)
}

const stringMapOf = (value: unknown, what: string): Record<string, string | null> => {
  need(isRecord(value), `${what}: expected a map`)
  const out: Record<string, string | null> = {}
  for (const [key, v] of Object.entries(value as Row)) {
    need(v === null || v === undefined || typeof v === "string", `${what}.${key}: expected a string`)
    out[key] = (v ?? null) as string | null
  }
  return out
}

const stringListOf = (value: unknown, what: string): Array<string> => {
  need(Array.isArray(value) && value.every((v) => typeof v === "string"), `${what}: expected a list of strings`)
  return value as Array<string>
}

/**
 * Fields Spark writes that we neither interpret nor keep: derived copies of `stats` and
 * `partitionValues`. Any other non-null field is kept as it came, as parseAction keeps them.
 */
const derived = new Set(["stats_parsed", "partitionValues_parsed"])

const extras = (row: Row, known: ReadonlyArray<string>, what: string): Row => {
  const out: Row = {}
  for (const [key, value] of Object.entries(row)) {
    if (known.includes(key) || derived.has(key) || !isPresent(value)) continue
    out[key] = plain(value, `${what}.${key}`)
  }
  return out
}

const decodeAdd = (v: Row): AddFile => {
  need(typeof v["path"] === "string" && v["path"] !== "", "add: path missing")
  const what = `add ${String(v["path"])}`
  if (isPresent(v["deletionVector"])) {
    throw new CheckpointError(`${what}: has a deletion vector (reader feature deletionVectors is not supported)`)
  }
  need(isPresent(v["size"]), `${what}: size missing`)
  need(typeof v["dataChange"] === "boolean", `${what}: dataChange missing`)
  const known = ["path", "partitionValues", "size", "modificationTime", "dataChange", "stats", "tags", "deletionVector"]
  return {
    ...extras(v, known, what),
    path: v["path"] as string,
    partitionValues: isPresent(v["partitionValues"]) ? stringMapOf(v["partitionValues"], `${what}: partitionValues`) : {},
    size: toNumber(v["size"], `${what}: size`),
    modificationTime: isPresent(v["modificationTime"]) ? toNumber(v["modificationTime"], `${what}: modificationTime`) : 0,
    dataChange: v["dataChange"] as boolean,
    ...(isPresent(v["stats"]) ? { stats: v["stats"] as string } : {}),
    ...(isPresent(v["tags"]) ? { tags: stringMapOf(v["tags"], `${what}: tags`) as Record<string, string> } : {})
  }
}

const decodeRemove = (v: Row): RemoveFile => {
  need(typeof v["path"] === "string" && v["path"] !== "", "remove: path missing")
  const what = `remove ${String(v["path"])}`
  const known = ["path", "deletionTimestamp", "dataChange", "extendedFileMetadata", "partitionValues", "size", "tags", "stats"]
  return {
    ...extras(v, known, what),
    path: v["path"] as string,
    ...(isPresent(v["deletionTimestamp"]) ? { deletionTimestamp: toNumber(v["deletionTimestamp"], `${what}: deletionTimestamp`) } : {}),
    dataChange: v["dataChange"] !== false,
    ...(isPresent(v["extendedFileMetadata"]) ? { extendedFileMetadata: v["extendedFileMetadata"] === true } : {}),
    ...(isPresent(v["partitionValues"]) ? { partitionValues: stringMapOf(v["partitionValues"], `${what}: partitionValues`) } : {}),
    ...(isPresent(v["size"]) ? { size: toNumber(v["size"], `${what}: size`) } : {}),
    ...(isPresent(v["tags"]) ? { tags: stringMapOf(v["tags"], `${what}: tags`) as Record<string, string> } : {})
  }
}

const decodeMetaData = (v: Row): Metadata => {
  need(typeof v["id"] === "string" && typeof v["schemaString"] === "string", "metaData: id or schemaString missing")
  const format = isRecord(v["format"]) ? v["format"] : {}
  const known = ["id", "name", "description", "format", "schemaString", "partitionColumns", "configuration", "createdTime"]
  return {
    ...extras(v, known, "metaData"),
    id: v["id"] as string,
    ...(isPresent(v["name"]) ? { name: v["name"] as string } : {}),
    ...(isPresent(v["description"]) ? { description: v["description"] as string } : {}),
    format: {
      provider: typeof format["provider"] === "string" ? format["provider"] : "parquet",
      options: isPresent(format["options"]) ? (stringMapOf(format["options"], "metaData: format.options") as Record<string, string>) : {}
    },
    schemaString: v["schemaString"] as string,
    partitionColumns: isPresent(v["partitionColumns"]) ? stringListOf(v["partitionColumns"], "metaData: partitionColumns") : [],
    configuration: isPresent(v["configuration"])
      ? (stringMapOf(v["configuration"], "metaData: configuration") as Record<string, string>)
      : {},
    ...(isPresent(v["createdTime"]) ? { createdTime: toNumber(v["createdTime"], "metaData: createdTime") } : {})
  }
}

const decodeProtocol = (v: Row): Protocol => {
  need(isPresent(v["minReaderVersion"]) && isPresent(v["minWriterVersion"]), "protocol: versions missing")
  return {
    minReaderVersion: toNumber(v["minReaderVersion"], "protocol: minReaderVersion"),
    minWriterVersion: toNumber(v["minWriterVersion"], "protocol: minWriterVersion"),
    ...(isPresent(v["readerFeatures"]) ? { readerFeatures: stringListOf(v["readerFeatures"], "protocol: readerFeatures") } : {}),
    ...(isPresent(v["writerFeatures"]) ? { writerFeatures: stringListOf(v["writerFeatures"], "protocol: writerFeatures") } : {})
  }
}

const decodeTxn = (v: Row): Txn => {
  need(typeof v["appId"] === "string" && isPresent(v["version"]), "txn: appId or version missing")
  return {
    appId: v["appId"] as string,
    version: toNumber(v["version"], `txn ${String(v["appId"])}: version`),
    ...(isPresent(v["lastUpdated"]) ? { lastUpdated: toNumber(v["lastUpdated"], `txn ${String(v["appId"])}: lastUpdated`) } : {})
  }
}

const decodeRow = (row: Row, index: number): Action => {
  const present = Object.keys(row).filter((key) => isPresent(row[key]))
  if (present.includes("sidecar") || present.includes("checkpointMetadata")) {
    throw new CheckpointError(
      `row ${index}: a V2 checkpoint (${present.includes("sidecar") ? "sidecar" : "checkpointMetadata"} action): ` +
        "V2 checkpoints (table feature v2Checkpoint) are not supported"
    )
  }
  if (present.length !== 1) {
    throw new CheckpointError(`row ${index}: expected exactly one action, got ${present.length === 0 ? "none" : present.join(", ")}`)
  }
  const kind = present[0]!
  const value = row[kind]
  if (!isRecord(value)) throw new CheckpointError(`row ${index}: ${kind} is not a struct`)
  try {
    switch (kind) {
      case "add":
        return { add: decodeAdd(value) }
      case "remove":
        return { remove: decodeRemove(value) }
      case "metaData":
        return { metaData: decodeMetaData(value) }
      case "protocol":
        return { protocol: decodeProtocol(value) }
      case "txn":
        return { txn: decodeTxn(value) }
      case "commitInfo":
        return { commitInfo: plain(value, kind) as Row }
      default:
        return { other: kind, value: plain(value, kind) }
    }
  } catch (error) {
    if (error instanceof CheckpointError) throw new CheckpointError(`row ${index}: ${error.message}`)
    throw error
  }
}

/**
 * The actions of a classic V1 checkpoint, written by us or by Spark, in file order. Rejects what we
 * cannot read correctly: files with deletion vectors and V2 checkpoints (sidecar / checkpointMetadata rows).
 */
export const decodeCheckpoint = async (bytes: Uint8Array): Promise<ReadonlyArray<Action>> => {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
  const rows = (await parquetReadObjects({ file })) as Array<Row>
  return rows.map(decodeRow)
}
