import { Effect } from "effect"
import type { Pgoutput } from "pg-logical-replication"
import type pg from "pg"
import type { CapturedTableConfig } from "../../config/capturedTables.ts"
import type { ChangeKey } from "../../domain/Change.ts"
import type { Column, TableSchema } from "../../domain/columns.ts"
import { type ColumnAsCaptured, schemaJson, type TableChange, type TableChangeOp } from "../../domain/TableChange.ts"
import type { Micros } from "../../domain/Timestamp.ts"
import type { CapturedTable } from "../../layers/postgres/logical/preflight.ts"
import { keyJson, rowJson } from "../../layers/postgres/pgText.ts"
import { columnTypeOfOid, formatTypeOf } from "../../layers/postgres/tableCatalog.ts"

/**
 * A table captured beside the orders table, while the producer runs: its config, what preflight
 * found (oid, partitioned), and its columns as the stream last described them. Rows are encoded by
 * `schema` (the columns the lake can hold); `columns` also holds a column of a type it cannot,
 * added while streaming, which the schema marker names so that the consumer stops that table.
 */
export interface CapturedSource {
  readonly config: CapturedTableConfig
  readonly table: CapturedTable
  schema: TableSchema
  columns: ReadonlyArray<ColumnAsCaptured>
}

export const makeSource = (config: CapturedTableConfig, table: CapturedTable, schema: TableSchema): CapturedSource => ({
  config,
  table,
  schema,
  columns: schema.columns
})

/** The schema marker of the source's current columns, at `key` (the key of the change that follows it). */
export const schemaMarker = (source: CapturedSource, key: ChangeKey, commitTime: Micros | null, xid: number | null): TableChange => ({
  table: source.config.display,
  topic: source.config.topic,
  op: "schema",
  keyJson: null,
  value: schemaJson(source.config.display, source.schema.key, source.columns),
  key,
  commitTime,
  xid
})

/** A row change of the source: keyed by its key columns, the row as JSON (null for a delete or truncate). */
export const rowChange = (
  source: CapturedSource,
  op: TableChangeOp,
  tuple: Readonly<Record<string, unknown>> | null,
  keyTuple: Readonly<Record<string, unknown>> | null,
  key: ChangeKey,
  commitTime: Micros | null,
  xid: number | null
): TableChange => ({
  table: source.config.display,
  topic: source.config.topic,
  op,
  keyJson: keyTuple === null ? null : keyJson(source.schema, keyTuple),
  value: tuple === null ? null : rowJson(source.schema, tuple),
  key,
  commitTime,
  xid
})

/**
 * A Relation message of the source: its columns now (pgoutput's Relation is the truth of what the
 * rows that follow hold). Each column's type is looked up by oid and typmod (cached); NOT NULL is
 * not in the message, so it is kept from what was known of a column of that name and type. The key
 * stays the configured or primary key (under REPLICA IDENTITY FULL every column is flagged part of it).
 */
export const followRelation = (pool: pg.Pool, source: CapturedSource, relation: Pgoutput.MessageRelation) =>
  Effect.gen(function*() {
    const known = new Map(source.columns.map((column) => [column.name, column]))
    const columns: Array<ColumnAsCaptured> = []
    for (const column of relation.columns) {
      // A type the lake cannot hold is announced as such (the consumer stops that table), not refused here.
      const type = yield* columnTypeOfOid(pool, column.typeOid, column.typeMod).pipe(
        Effect.catchIf((error) => error.reason === "misconfigured", () => Effect.succeed(undefined))
      )
      const pgType = yield* formatTypeOf(pool, column.typeOid, column.typeMod)
      const before = known.get(column.name)
      columns.push({
        name: column.name,
        pgType,
        typeOid: column.typeOid,
        type,
        nullable: before !== undefined && before.pgType === pgType ? before.nullable : true
      })
    }
    source.columns = columns
    source.schema = {
      columns: columns.filter((column): column is Column => column.type !== undefined),
      key: source.schema.key
    }
  })
