import { Either } from "effect"
import { changeHeaders, type ChangeKey, compareChangeKeys, parseChangeKey } from "../../domain/Change.ts"
import type { Row, TableSchema } from "../../domain/columns.ts"
import { rejection, type Rejection } from "../../domain/Rejection.ts"
import { decodeKey, decodeRow, keyText as messageKeyOf } from "../../domain/rowDecode.ts"
import { rowsKeys } from "../../table/rowsKeys.ts"
import type { RowKeys } from "../../table/tableFormat.ts"
import { schemaStep } from "../../domain/schemaEvolution.ts"
import { parseSchemaMessage } from "../../domain/schemaMessage.ts"
import type { TableChangeOp } from "../../domain/TableChange.ts"
import type { Micros } from "../../domain/Timestamp.ts"
import { parseIsoMicros } from "../../domain/Timestamp.ts"
import type { DeadLetter } from "../../services/DeadLetters.ts"
import type { PartitionPosition } from "../../services/Lake.ts"
import { headerOf, type MessageBatch, type RawMessage } from "../../services/OrderStream.ts"

/** A row change of a table captured beside the orders table, decoded, with its message's offset. */
export interface RowChangeAt {
  readonly op: Exclude<TableChangeOp, "schema">
  /** The row's key as the table's format spells it (`rowsKeys`: what rows in files are matched by); null for a truncate. */
  readonly keyText: string | null
  /** The row after the change; null for a delete or truncate. */
  readonly row: Row | null
  readonly key: ChangeKey
  readonly commitTime: Micros | null
  readonly xid: number | null
  /** A truncate's marker: the topic's partition count when it was published. */
  readonly partitions?: number
  readonly offset: bigint
}

/**
 * One partition's part of a batch of a table's topic. `schema` is the columns messages are read
 * with: the table's when the batch opened, moved on by the partition's schema markers. `evolved`:
 * the newest schema a marker of this part added columns with (committed with the part as a new
 * metaData). `stopped`: a marker announced a change the Delta table cannot follow; the part ends
 * before it, and the table's stream stops there. `schemaSince`: the key of the marker that gave
 * `schema` its newest columns (null: not known); a marker at or below it describes the table as it
 * was before, and is passed over.
 */
export interface TableSplit {
  readonly topic: string
  readonly partition: number
  readonly from: bigint
  firstOffset: bigint | null
  lastOffset: bigint | null
  nextOffset: bigint
  messages: number
  bytes: number
  schema: TableSchema
  evolved: TableSchema | null
  schemaSince: ChangeKey | null
  stopped: { readonly offset: bigint; readonly problem: string } | null
  readonly changes: Array<RowChangeAt>
  readonly dead: Array<DeadLetter>
  lastChangeKey: ChangeKey | null
  duplicates: number
  stale: number
  written: number
}

export const openTableSplit = (
  topic: string,
  partition: number,
  position: PartitionPosition,
  schema: TableSchema,
  schemaSince: ChangeKey | null = null
): TableSplit => ({
  topic,
  partition,
  from: position.nextOffset,
  firstOffset: null,
  lastOffset: null,
  nextOffset: position.nextOffset,
  messages: 0,
  bytes: 0,
  schema,
  evolved: null,
  schemaSince,
  stopped: null,
  changes: [],
  dead: [],
  lastChangeKey: position.lastChangeKey,
  duplicates: 0,
  stale: 0,
  written: 0
})

const decoder = new TextDecoder("utf-8", { fatal: true })
const textOf = (bytes: Uint8Array | null): string | null | undefined => {
  if (bytes === null) return null
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}

const rowOps: ReadonlySet<string> = new Set(["insert", "update", "delete", "snapshot", "truncate"])

const keysBySchema = new WeakMap<TableSchema, RowKeys<Row>>()
/** The table format's key of a row (cached per schema: a batch reads thousands of rows with one). */
export const matchKeyOf = (schema: TableSchema, row: Row): string => {
  let keys = keysBySchema.get(schema)
  if (keys === undefined) keysBySchema.set(schema, keys = rowsKeys(schema))
  return keys.keyOf(row)
}

/** A row change's message (not a schema marker) to the change, read with `schema`; Left: why it is not one. */
export const decodeRowChange = (message: RawMessage, key: ChangeKey, schema: TableSchema): Either.Either<Omit<RowChangeAt, "offset">, Rejection> => {
  const op = headerOf(message, changeHeaders.op)
  if (op === undefined || !rowOps.has(op)) {
    return Either.left(rejection("invalid_change", `op header is ${JSON.stringify(op ?? null)}; expected schema, ${[...rowOps].join(", ")}`))
  }
  const commitText = headerOf(message, changeHeaders.commitTime)
  const commitTime = commitText === undefined ? null : parseIsoMicros(commitText) ?? null
  const xidText = headerOf(message, changeHeaders.xid)
  const xid = xidText === undefined || !/^\d+$/.test(xidText) ? null : Number(xidText)
  const base = { op: op as RowChangeAt["op"], key, commitTime, xid }
  const value = textOf(message.value)
  if (op === "truncate") {
    const partitionsText = headerOf(message, changeHeaders.partitions) ?? ""
    if (!/^\d{1,6}$/.test(partitionsText) || Number(partitionsText) < 1) {
      return Either.left(rejection("invalid_change", `a truncate's partitions header must be the topic's partition count, it is ${JSON.stringify(partitionsText)}`))
    }
    if (value !== null) return Either.left(rejection("invalid_change", "a truncate's value must be null, this one has a value"))
    return Either.right({ ...base, keyText: null, row: null, partitions: Number(partitionsText) })
  }
  const keyJson = textOf(message.key)
  if (keyJson === null || keyJson === undefined) return Either.left(rejection("invalid_change", `a ${op}'s key must be its row's key columns as JSON`))
  if (op === "delete") {
    if (value !== null) return Either.left(rejection("invalid_change", "a delete must be a tombstone (null value), this one has a value"))
    const keyValues = decodeKey(schema, keyJson)
    if (Either.isLeft(keyValues)) return Either.left(rejection("invalid_change", `a delete's key: ${keyValues.left}`))
    const row: Array<Row[number]> = schema.columns.map(() => null)
    schema.key.forEach((name, i) => {
      row[schema.columns.findIndex((column) => column.name === name)] = keyValues.right[i]!
    })
    return Either.right({ ...base, keyText: matchKeyOf(schema, row), row: null })
  }
  if (value === undefined) return Either.left(rejection("invalid_utf8", "the value is not UTF-8"))
  if (value === null) return Either.left(rejection("empty_value", `a ${op} needs the row as its value`))
  const row = decodeRow(schema, value)
  if (Either.isLeft(row)) return Either.left(rejection("invalid_row", row.left))
  // The producer's key is the row's key columns, spelled one way (rowDecode.ts): anything else is not ours.
  const expected = messageKeyOf(schema, row.right)
  if (expected !== keyJson) return Either.left(rejection("invalid_change", `key ${keyJson} is not the value's key ${expected}`))
  return Either.right({ ...base, keyText: matchKeyOf(schema, row.right), row: row.right })
}

/**
 * Adds the next messages of the split's partition, by the rules of the orders' changes (split.ts):
 * a change at or below the partition's mark is a copy and skipped; a lower epoch's is stale. A
 * schema marker takes the key of the change after it and does not move the mark (so that rows keep
 * their keys whether or not a session sent a marker before them); one at or below the mark was
 * applied already. A marker that adds columns moves the split's schema on; one the Delta table
 * cannot follow stops the split before it, and nothing after it is read. A marker at or below the
 * key of the one that gave the table its newest columns is older than those columns (pgoutput's
 * Relation of a stretch the producer publishes again after a restart, or the marker of a partition
 * read after another one's ADD COLUMN was committed): it is no drop, and is passed over.
 */
export const addToTableSplit = (split: TableSplit, batch: MessageBatch): TableSplit => {
  for (const message of batch.messages) {
    if (split.stopped !== null) break
    if (message.offset < split.nextOffset) continue
    const source = { topic: batch.topic, partition: batch.partition }
    const keyHeader = headerOf(message, changeHeaders.changeKey)
    const key = parseChangeKey(keyHeader)
    if (key === undefined) {
      split.dead.push({ source, message, rejection: rejection("invalid_change", `change_key header is not [<epoch>:]<16 hex>:<phase>:<seq>: ${JSON.stringify(keyHeader ?? null)}`) })
      count(split, message)
      continue
    }
    const seen = split.lastChangeKey !== null && compareChangeKeys(key, split.lastChangeKey) <= 0
    if (headerOf(message, changeHeaders.op) === "schema") {
      const older = split.schemaSince !== null && compareChangeKeys(key, split.schemaSince) <= 0
      if (!seen && !older) {
        const announced = parseSchemaMessage(textOf(message.value) ?? "")
        if (Either.isLeft(announced)) {
          split.dead.push({ source, message, rejection: rejection("invalid_change", announced.left) })
        } else {
          const step = schemaStep(split.schema, announced.right)
          if (step._tag === "incompatible") {
            split.stopped = { offset: message.offset, problem: step.problem }
            split.nextOffset = message.offset
            break
          }
          if (step._tag === "added") {
            split.schema = step.schema
            split.evolved = step.schema
            split.schemaSince = key
          }
        }
      }
      count(split, message)
      continue
    }
    count(split, message)
    if (seen) {
      split.duplicates += 1
      if (key.epoch < split.lastChangeKey!.epoch) split.stale += 1
      continue
    }
    const change = decodeRowChange(message, key, split.schema)
    if (Either.isLeft(change)) {
      split.dead.push({ source, message, rejection: change.left })
      continue
    }
    if (change.right.partitions !== undefined && batch.partition >= change.right.partitions) {
      const detail = `a truncate marker for a topic of ${change.right.partitions} partitions on partition ${batch.partition}`
      split.dead.push({ source, message, rejection: rejection("invalid_change", detail) })
      continue
    }
    split.lastChangeKey = key
    split.changes.push({ ...change.right, offset: message.offset })
    split.written += 1
  }
  if (split.stopped === null && batch.nextOffset > split.nextOffset) split.nextOffset = batch.nextOffset
  return split
}

const count = (split: TableSplit, message: RawMessage) => {
  if (split.firstOffset === null) split.firstOffset = message.offset
  split.lastOffset = message.offset
  split.nextOffset = message.offset + 1n
  split.messages += 1
  split.bytes += message.value?.length ?? 0
}
