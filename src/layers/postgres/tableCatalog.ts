import { Effect, Either } from "effect"
import type pg from "pg"
import type { Column, ColumnType, TableSchema } from "../../domain/columns.ts"
import { CaptureError } from "./logical/CaptureError.ts"
import { query } from "./logical/pgConnection.ts"
import { columnTypeOf, type PgTypeRow, supportedTypes } from "./pgTypes.ts"

/**
 * A captured table's schema read from the PostgreSQL catalog: its columns with their lake types
 * (src/layers/postgres/pgTypes.ts) and its key. Identifiers travel as query parameters.
 */

export interface TableName {
  readonly schema: string
  readonly name: string
}

const display = (table: TableName) => `${table.schema}.${table.name}`

interface AttributeRow {
  readonly name: string
  readonly type_oid: number | string
  readonly typmod: number | string
  readonly pg_type: string
  readonly not_null: boolean | string
}

// The pool may return every value as text (the snapshot reader's pool does): numbers and booleans
// are read from either form.
const integer = (value: number | string): number => Number(value)
const flag = (value: boolean | string): boolean => value === true || value === "t"

// Generated columns are left out: pgoutput (PostgreSQL 15-17) does not send them, so a row from the
// stream would never have them.
const attributesSql = `SELECT a.attname AS name, a.atttypid::int AS type_oid, a.atttypmod AS typmod,
    format_type(a.atttypid, a.atttypmod) AS pg_type, a.attnotnull AS not_null
  FROM pg_attribute a
  WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  ORDER BY a.attnum`

const relationSql = `SELECT c.oid::int AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`

const primaryKeySql = `SELECT a.attname AS name
  FROM pg_index i
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
  WHERE i.indrelid = $1 AND i.indisprimary
  ORDER BY k.position`

/** The pg_type rows of the given types and of every type they refer to (domain bases, array elements). */
const typeRowsSql = `WITH RECURSIVE wanted(oid) AS (
    SELECT unnest($1::oid[])
    UNION
    SELECT v.oid FROM pg_type t JOIN wanted w ON t.oid = w.oid,
      LATERAL (VALUES (t.typelem), (t.typbasetype)) AS v(oid)
    WHERE v.oid <> 0
  )
  SELECT t.oid::int AS oid, t.typname, t.typtype, t.typcategory, t.typelem::int AS typelem,
    t.typbasetype::int AS typbasetype, t.typtypmod
  FROM pg_type t JOIN wanted w ON t.oid = w.oid`

/** pg_type rows per pool, kept for the life of the pool: a type's row does not change under its OID. */
const typeCache = new WeakMap<pg.Pool, Map<number, PgTypeRow>>()

const cacheOf = (pool: pg.Pool) => {
  let cache = typeCache.get(pool)
  if (cache === undefined) {
    cache = new Map()
    typeCache.set(pool, cache)
  }
  return cache
}

/** Loads (once per pool) the pg_type rows needed to map the given type OIDs. */
const loadTypes = (pool: pg.Pool, oids: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const cache = cacheOf(pool)
    const missing = [...new Set(oids)].filter((oid) => !cache.has(oid))
    if (missing.length > 0) {
      const rows = yield* query<Record<keyof PgTypeRow, number | string>>(pool, typeRowsSql, [missing])
      for (const row of rows) {
        const oid = integer(row.oid)
        cache.set(oid, {
          oid,
          typname: String(row.typname),
          typtype: String(row.typtype),
          typcategory: String(row.typcategory),
          typelem: integer(row.typelem),
          typbasetype: integer(row.typbasetype),
          typtypmod: integer(row.typtypmod)
        })
      }
    }
    return (oid: number) => cache.get(oid)
  })

const unsupported = (what: string, problems: ReadonlyArray<string>) =>
  new CaptureError({
    reason: "misconfigured",
    detail: `${what}: ${problems.join("; ")}. Supported types: ${supportedTypes}`
  })

/**
 * The lake type of a column announced by a pgoutput Relation message (type OID and typmod), for a
 * column added while streaming. The catalog rows are cached per pool.
 */
export const columnTypeOfOid = (pool: pg.Pool, typeOid: number, typmod: number): Effect.Effect<ColumnType, CaptureError> =>
  Effect.flatMap(loadTypes(pool, [typeOid]), (typeOf) =>
    Either.match(columnTypeOf(typeOf, typeOid, typmod), {
      onLeft: (problem) => Effect.fail(unsupported(`type oid ${typeOid} cannot be captured`, [problem])),
      onRight: Effect.succeed
    }))

/**
 * The table's columns in attnum order (dropped and generated columns left out) and its key: the
 * configured `key` columns when given (each must exist), else the primary key's columns in key
 * order. Every column of an unsupported type is named in one error.
 */
export const readTableSchema = (
  pool: pg.Pool,
  table: TableName,
  key?: ReadonlyArray<string>
): Effect.Effect<TableSchema, CaptureError> =>
  Effect.gen(function*() {
    const [relation] = yield* query<{ oid: number | string }>(pool, relationSql, [table.schema, table.name])
    if (relation === undefined) {
      return yield* new CaptureError({ reason: "misconfigured", detail: `table ${display(table)} does not exist (or is not a table)` })
    }
    const attributes = yield* query<AttributeRow>(pool, attributesSql, [relation.oid])
    const typeOf = yield* loadTypes(pool, attributes.map((a) => integer(a.type_oid)))
    const columns: Array<Column> = []
    const problems: Array<string> = []
    for (const a of attributes) {
      const typeOid = integer(a.type_oid)
      const type = columnTypeOf(typeOf, typeOid, integer(a.typmod))
      if (Either.isLeft(type)) problems.push(`column ${a.name} has type ${a.pg_type} (${type.left})`)
      else columns.push({ name: a.name, pgType: a.pg_type, typeOid, type: type.right, nullable: !flag(a.not_null) })
    }
    if (problems.length > 0) return yield* unsupported(`table ${display(table)} has columns of unsupported types`, problems)
    if (columns.length === 0) return yield* new CaptureError({ reason: "misconfigured", detail: `table ${display(table)} has no columns` })
    if (key !== undefined && key.length > 0) {
      const names = new Set(columns.map((c) => c.name))
      const absent = key.filter((name) => !names.has(name))
      if (absent.length > 0) {
        return yield* new CaptureError({
          reason: "misconfigured",
          detail: `the configured key of ${display(table)} names columns it does not have: ${absent.join(", ")} (columns: ${[...names].join(", ")})`
        })
      }
      if (new Set(key).size !== key.length) {
        return yield* new CaptureError({ reason: "misconfigured", detail: `the configured key of ${display(table)} repeats a column: ${key.join(", ")}` })
      }
      return { columns, key: [...key] }
    }
    const primary = yield* query<{ name: string }>(pool, primaryKeySql, [relation.oid])
    if (primary.length === 0) {
      return yield* new CaptureError({
        reason: "misconfigured",
        detail: `table ${display(table)} has no primary key: add one, or give its key columns in the config (key: [col, ...])`
      })
    }
    return { columns, key: primary.map((p) => p.name) }
  })

const typeNames = new WeakMap<pg.Pool, Map<string, string>>()

/** PostgreSQL's spelling of a type with its modifier (`format_type`), cached per pool: a Relation message gives only OID and typmod. */
export const formatTypeOf = (pool: pg.Pool, typeOid: number, typmod: number): Effect.Effect<string, CaptureError> =>
  Effect.gen(function*() {
    let cache = typeNames.get(pool)
    if (cache === undefined) typeNames.set(pool, cache = new Map())
    const key = `${typeOid}:${typmod}`
    const known = cache.get(key)
    if (known !== undefined) return known
    const [row] = yield* query<{ name: string }>(pool, "SELECT format_type($1::oid, $2::int) AS name", [typeOid, typmod])
    const name = row?.name ?? `oid ${typeOid}`
    cache.set(key, name)
    return name
  })
