import { Effect } from "effect"
import type pg from "pg"
import type { TableRef } from "../../../config/capturedTables.ts"
import type { TableSchema } from "../../../domain/columns.ts"
import { CaptureError } from "./CaptureError.ts"
import { describe, query, reservedClient } from "./pgConnection.ts"

/** Every value as PostgreSQL's text, as pgoutput sends it: one codec (pgText.ts) for both. */
const asText = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`

export interface TableChunk {
  /** Rows as column → PostgreSQL's text (null for NULL), in key order. */
  readonly rows: ReadonlyArray<Readonly<Record<string, string | null>>>
  /** The key of the chunk's last row (each key column's text): where the next read starts. */
  readonly lastKey: ReadonlyArray<string | null>
  /** The chunk filled its read: more rows may follow. */
  readonly full: boolean
}

const textQuery = (client: pg.PoolClient, text: string, values: ReadonlyArray<unknown>) =>
  Effect.tryPromise({
    try: async () => (await client.query<Record<string, string | null>>({ text, values: [...values], types: asText })).rows,
    catch: (cause) => new CaptureError({ reason: "connection", detail: `query failed: ${text.slice(0, 80)}`, cause: describe(cause) })
  })

/**
 * Reads a table in key order, `chunk` rows at a time, inside one REPEATABLE READ transaction: as
 * of the slot's exported snapshot when `exported` is given, else as of now (a resumed snapshot, or
 * a table added to a running configuration). Keyset paging: `(k1, k2) > (last)`, each key text cast
 * back to its column's type, so a chunk costs an index range scan whatever the table's size. Each
 * chunk is handed to `onChunk` (published, progress saved) before the next is read.
 */
export const readTableSnapshot = <E, R>(
  pool: pg.Pool,
  table: TableRef,
  schema: TableSchema,
  options: { readonly exported: string | null; readonly after: ReadonlyArray<string | null> | null; readonly chunk: number },
  onChunk: (chunk: TableChunk) => Effect.Effect<void, E, R>
) =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* reservedClient(pool)
    yield* query(client, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    if (options.exported !== null) yield* query(client, `SET TRANSACTION SNAPSHOT '${options.exported.replace(/[^0-9A-Fa-f-]/g, "")}'`)
    const from = `${quoted(table.schema)}.${quoted(table.name)}`
    const columns = schema.columns.map((c) => quoted(c.name)).join(", ")
    const keyColumns = schema.key.map((name) => schema.columns.find((c) => c.name === name)!)
    const order = keyColumns.map((c) => quoted(c.name)).join(", ")
    // Types come from the catalog (format_type), not from config.
    const keyParams = keyColumns.map((c, i) => `$${i + 1}::text::${c.pgType}`).join(", ")
    const first = `SELECT ${columns} FROM ${from} ORDER BY ${order} LIMIT $1`
    const next = `SELECT ${columns} FROM ${from} WHERE (${order}) > (${keyParams}) ORDER BY ${order} LIMIT $${keyColumns.length + 1}`
    let after = options.after
    while (true) {
      const rows = yield* (after === null ? textQuery(client, first, [options.chunk]) : textQuery(client, next, [...after, options.chunk]))
      if (rows.length === 0) break
      const last = rows[rows.length - 1]!
      const lastKey = schema.key.map((name) => last[name] ?? null)
      yield* onChunk({ rows, lastKey, full: rows.length === options.chunk })
      after = lastKey
      if (rows.length < options.chunk) break
    }
    yield* query(client, "COMMIT")
  }))
