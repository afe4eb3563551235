import { type ChangeKey, changeHeaders, type ChangeOp, formatChangeKey, formatLsn } from "./Change.ts"
import { type Column, type TableSchema, typeName } from "./columns.ts"
import { formatIsoMicros, type Micros } from "./Timestamp.ts"

/**
 * A change of a row of a table captured beside the orders table (`tables:`), as the producer
 * publishes it to the table's topic. Beside the row operations, a `schema` marker: the table's
 * columns, published to every partition of the topic before the first row that has them (at the
 * snapshot, and when pgoutput's Relation message says the columns changed), so the consumer of any
 * partition knows the columns of what follows. A `truncate` marker goes to every partition too.
 */
export type TableChangeOp = ChangeOp | "schema"

export interface TableChange {
  /** `schema.name`: the `source` header. */
  readonly table: string
  readonly topic: string
  readonly op: TableChangeOp
  /** The message key: the row's key columns as JSON (`{"id":5}`); null for markers (they go to every partition). */
  readonly keyJson: string | null
  /** The row after the change as JSON (null for a delete: a tombstone, and a truncate); a schema marker's `schemaJson`. */
  readonly value: string | null
  readonly key: ChangeKey
  readonly commitTime: Micros | null
  readonly xid: number | null
}

export const isMarker = (op: TableChangeOp) => op === "schema" || op === "truncate"

/**
 * A schema marker's value: the table, its key, and each column with PostgreSQL's type and the lake's
 * (`type` null: a type the lake cannot hold, added while streaming; the consumer stops that table
 * and names it).
 */
export interface SchemaMessage {
  readonly table: string
  readonly key: ReadonlyArray<string>
  readonly columns: ReadonlyArray<{
    readonly name: string
    readonly pg_type: string
    /** The type's OID: an unconstrained numeric (a string in the lake) still travels as a JSON number. */
    readonly type_oid: number
    readonly type: string | null
    readonly nullable: boolean
  }>
}

export interface ColumnAsCaptured extends Omit<Column, "type"> {
  /** undefined: not a type the lake can hold. */
  readonly type: Column["type"] | undefined
}

export const schemaJson = (table: string, key: ReadonlyArray<string>, columns: ReadonlyArray<ColumnAsCaptured>): string =>
  JSON.stringify({
    table,
    key,
    columns: columns.map((column) => ({
      name: column.name,
      pg_type: column.pgType,
      type_oid: column.typeOid,
      type: column.type === undefined ? null : typeName(column.type),
      nullable: column.nullable
    }))
  } satisfies SchemaMessage)

export const schemaJsonOf = (table: string, schema: TableSchema) => schemaJson(table, schema.key, schema.columns)

/** A change as a message: key, value, headers, and a marker's partition. */
export interface TableChangeRecord {
  key: string | null
  value: string | null
  partition?: number
  headers: { [name: string]: string }
}

const headersOf = (change: TableChange, capturedAt: string) => {
  const headers: { [name: string]: string } = {
    [changeHeaders.op]: change.op,
    [changeHeaders.lsn]: formatLsn(change.key.lsn),
    [changeHeaders.changeKey]: formatChangeKey(change.key),
    source: change.table,
    captured_at: capturedAt
  }
  if (change.commitTime !== null) headers[changeHeaders.commitTime] = formatIsoMicros(change.commitTime)
  if (change.xid !== null) headers[changeHeaders.xid] = String(change.xid)
  return headers
}

/**
 * The messages of one change: keyed by the row's key (murmur2 keeps a row's changes on one
 * partition, in order), or, for a marker, one copy per partition with `partitions` saying how many.
 */
export const tableChangeRecords = (change: TableChange, partitions: number, capturedAt: string): Array<TableChangeRecord> => {
  if (!isMarker(change.op)) return [{ key: change.keyJson, value: change.value, headers: headersOf(change, capturedAt) }]
  return Array.from({ length: partitions }, (_, partition) => ({
    key: null,
    value: change.value,
    partition,
    headers: { ...headersOf(change, capturedAt), [changeHeaders.partitions]: String(partitions) }
  }))
}
