import { Effect } from "effect"
import type pg from "pg"
import { parseLsn } from "../../../domain/Change.ts"
import { CaptureError, resnapshotHint } from "./CaptureError.ts"
import { query, reservedClient } from "./pgConnection.ts"
import type { CapturedTable } from "./preflight.ts"

/** The table captured is not the one the stream follows any more: its changes are no longer published. */
export const tableReplaced = (table: CapturedTable, publication: string, what: string) =>
  new CaptureError({
    reason: "table-replaced",
    detail: `table ${table.schema}.${table.name} ${what}: its changes since then are not in the stream (DROP TABLE also removes a table ` +
      `from its publication). Capture stopped before confirming the slot past them. Publish the table again from a new snapshot: ` +
      `ALTER PUBLICATION "${publication}" ADD TABLE "${table.name}" if it is not in the publication, then ${resnapshotHint}`
  })

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`

/**
 * Checks that the table is still the one captured (same oid under the same name) and still in the
 * publication, and returns a WAL position up to which that holds: the slot may be confirmed up to
 * it. DROP TABLE takes an ACCESS EXCLUSIVE lock and commits while holding it, so with our ACCESS
 * SHARE lock held no drop of the table is in progress, and any later one commits after the
 * position read here. A lock not granted within 5 s fails as a connection error (the caller keeps
 * the previous position).
 */
export const checkSourceTable = Effect.fn("LogicalCapture.checkSourceTable")(function*(
  pool: pg.Pool,
  table: CapturedTable,
  publication: string
) {
  return yield* Effect.scoped(Effect.gen(function*() {
    const client = yield* reservedClient(pool)
    const current = query<{ oid: number | null; renamed: string | null; covers: boolean; lsn: string }>(
      client,
      `SELECT to_regclass($1)::oid::int AS oid, pg_current_wal_lsn()::text AS lsn,
          (SELECT format('%s.%s', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $5) AS renamed,
          EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = $2 AND t.schemaname = $3 AND t.tablename = $4) AS covers`,
      [`${quoted(table.schema)}.${quoted(table.name)}`, publication, table.schema, table.name, table.oid]
    ).pipe(Effect.map((rows) => rows[0]!))
    const judge = (now: { oid: number | null; renamed: string | null; covers: boolean }) =>
      now.oid === null
        ? Effect.fail(tableReplaced(table, publication, now.renamed === null ? "was dropped" : `was renamed to ${now.renamed}`))
        : now.oid !== table.oid
        ? Effect.fail(tableReplaced(table, publication, `was dropped and created again (oid ${table.oid} at start, now ${now.oid})`))
        : !now.covers
        ? Effect.fail(tableReplaced(table, publication, `was removed from publication ${publication}`))
        : Effect.void
    yield* judge(yield* current)
    yield* query(client, "BEGIN")
    yield* query(client, "SET LOCAL lock_timeout = '5s'")
    yield* query(client, `LOCK TABLE ONLY ${quoted(table.schema)}.${quoted(table.name)} IN ACCESS SHARE MODE`)
    // Read again under the lock: the name could have changed hands between the first read and the lock.
    const locked = yield* current
    yield* query(client, "COMMIT")
    yield* judge(locked)
    return parseLsn(locked.lsn)!
  }))
})
