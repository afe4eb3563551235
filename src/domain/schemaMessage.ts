import { Either } from "effect"
import type { ColumnType, ScalarType, TableSchema } from "./columns.ts"
import type { SchemaMessage } from "./TableChange.ts"

const scalarKinds = new Set(["short", "integer", "long", "float", "double", "boolean", "string", "date", "timestamp", "binary"])

/** `long`, `decimal(6,2)`, `array<string>` (typeName's spelling) back to the type; undefined if it is none. */
export const parseTypeName = (name: string): ColumnType | undefined => {
  const array = /^array<(.+)>$/.exec(name)
  if (array !== null) {
    const element = parseScalar(array[1]!)
    return element === undefined ? undefined : { kind: "array", element }
  }
  return parseScalar(name)
}

const parseScalar = (name: string): ScalarType | undefined => {
  const decimal = /^decimal\((\d{1,2}),(\d{1,2})\)$/.exec(name)
  if (decimal !== null) {
    const precision = Number(decimal[1])
    const scale = Number(decimal[2])
    return precision >= 1 && precision <= 38 && scale <= precision ? { kind: "decimal", precision, scale } : undefined
  }
  return scalarKinds.has(name) ? ({ kind: name } as ScalarType) : undefined
}

export interface CapturedSchema {
  readonly table: string
  readonly schema: TableSchema
  /** Columns of a type the lake cannot hold (added while streaming), as `name (pg type)`. */
  readonly unsupported: ReadonlyArray<string>
}

/** A schema marker's value (TableChange.ts) to the schema it announces; Left: why it is not one. */
export const parseSchemaMessage = (text: string): Either.Either<CapturedSchema, string> => {
  let parsed: SchemaMessage
  try {
    parsed = JSON.parse(text) as SchemaMessage
  } catch (error) {
    return Either.left(`a schema marker's value is not JSON: ${String(error)}`)
  }
  if (typeof parsed !== "object" || parsed === null || !Array.isArray(parsed.columns) || !Array.isArray(parsed.key) || typeof parsed.table !== "string") {
    return Either.left("a schema marker's value must hold table, key and columns")
  }
  const columns: Array<TableSchema["columns"][number]> = []
  const unsupported: Array<string> = []
  for (const column of parsed.columns) {
    if (typeof column?.name !== "string" || typeof column.pg_type !== "string") return Either.left("a schema marker's column must have a name and a pg_type")
    if (column.type === null) {
      unsupported.push(`${column.name} (${column.pg_type})`)
      continue
    }
    const type = typeof column.type === "string" ? parseTypeName(column.type) : undefined
    if (type === undefined) return Either.left(`a schema marker's column ${column.name} has type ${JSON.stringify(column.type)}, which is none the lake knows`)
    const typeOid = typeof column.type_oid === "number" && Number.isSafeInteger(column.type_oid) ? column.type_oid : 0
    columns.push({ name: column.name, pgType: column.pg_type, typeOid, type, nullable: column.nullable !== false })
  }
  for (const name of parsed.key) {
    if (!columns.some((column) => column.name === name)) return Either.left(`a schema marker's key column ${JSON.stringify(name)} is not one of its columns`)
  }
  return Either.right({ table: parsed.table, schema: { columns, key: parsed.key }, unsupported })
}
