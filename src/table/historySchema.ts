import type { Column, TableSchema } from "../domain/columns.ts"

/** The columns a table's history (`<table>_changes`) puts before the row's own. */
export const historyColumns: ReadonlyArray<Column> = [
  { name: "_change_op", pgType: "text", typeOid: 25, type: { kind: "string" }, nullable: false },
  { name: "_commit_lsn", pgType: "pg_lsn", typeOid: 3220, type: { kind: "long" }, nullable: false },
  { name: "_change_seq", pgType: "bigint", typeOid: 20, type: { kind: "long" }, nullable: false },
  { name: "_commit_ts", pgType: "timestamp with time zone", typeOid: 1184, type: { kind: "timestamp" }, nullable: true },
  { name: "_xid", pgType: "xid", typeOid: 28, type: { kind: "long" }, nullable: true }
]

/**
 * The history of a table captured beside the orders table: every change (insert, update, delete,
 * snapshot, truncate), where it stands in the commit order (`ORDER BY _commit_lsn, _change_seq`),
 * and the row after it (a delete: before it; a truncate: none). Append-only: no key.
 */
export const historySchemaOf = (schema: TableSchema): TableSchema => ({
  columns: [...historyColumns, ...schema.columns.map((column) => ({ ...column, nullable: true }))],
  key: []
})

/** A table whose own columns would collide with the history's cannot have one: named at start. */
export const historyClash = (schema: TableSchema): string | undefined => {
  const clash = schema.columns.find((column) => historyColumns.some((h) => h.name === column.name))
  return clash === undefined ? undefined : `column ${clash.name} has the name of a history column (${historyColumns.map((h) => h.name).join(", ")})`
}
