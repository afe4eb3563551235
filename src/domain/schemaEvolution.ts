import type { Column, TableSchema } from "./columns.ts"
import { typeName } from "./columns.ts"
import type { CapturedSchema } from "./schemaMessage.ts"

export type SchemaStep =
  | { readonly _tag: "same" }
  /** Columns added (ALTER TABLE ADD COLUMN): older rows read them as null. */
  | { readonly _tag: "added"; readonly schema: TableSchema; readonly added: ReadonlyArray<Column> }
  /** A change a Delta table without column mapping cannot follow: a column dropped, renamed or retyped, the key changed, a type the lake cannot hold. */
  | { readonly _tag: "incompatible"; readonly problem: string }

/**
 * What a table's columns becoming `next` means for its Delta table. Only additions can be followed:
 * Delta (without column mapping, which older readers lack) cannot drop, rename or retype a column in
 * place; those need the table rewritten from a new snapshot.
 */
export const schemaStep = (current: TableSchema, next: CapturedSchema): SchemaStep => {
  const problems: Array<string> = []
  // No table yet: its first marker gives all its columns.
  if (current.columns.length === 0 && next.unsupported.length === 0) {
    return next.schema.columns.length === 0 ? { _tag: "same" } : { _tag: "added", schema: next.schema, added: next.schema.columns }
  }
  if (next.unsupported.length > 0) problems.push(`column ${next.unsupported.join(", ")} has a type the lake cannot hold`)
  const byName = new Map(next.schema.columns.map((column) => [column.name, column]))
  for (const column of current.columns) {
    const now = byName.get(column.name)
    if (now === undefined) problems.push(`column ${column.name} was dropped (or renamed)`)
    else if (typeName(now.type) !== typeName(column.type)) {
      problems.push(`column ${column.name} changed type from ${column.pgType} (${typeName(column.type)}) to ${now.pgType} (${typeName(now.type)})`)
    }
  }
  if (current.key.join(",") !== next.schema.key.join(",")) problems.push(`the key changed from (${current.key.join(", ")}) to (${next.schema.key.join(", ")})`)
  if (problems.length > 0) return { _tag: "incompatible", problem: problems.join("; ") }
  const known = new Set(current.columns.map((column) => column.name))
  const added = next.schema.columns.filter((column) => !known.has(column.name))
  if (added.length === 0) return { _tag: "same" }
  return { _tag: "added", schema: { columns: [...current.columns, ...added], key: current.key }, added }
}
