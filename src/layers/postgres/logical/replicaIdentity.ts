import { Effect } from "effect"
import type pg from "pg"
import { query, reservedClient } from "./pgConnection.ts"

/**
 * A table whose rows are stored, as logical decoding sees them: the table itself, or each leaf
 * partition of a partitioned table (a partition's WAL carries its own identity, and ALTER TABLE on
 * the parent does not reach its partitions).
 */
export interface StoredTable {
  /** Schema-qualified and quoted, ready for SQL. */
  readonly sql: string
  /** pg_class.relreplident: d(efault), n(othing), f(ull), i(ndex). */
  readonly identity: string
  /** The columns of the primary key (identity d) or of the identity index (i); null when there is none. */
  readonly keyColumns: ReadonlyArray<string> | null
  readonly owned: boolean
}

export type IdentityPlan =
  | { readonly ok: true; readonly setFull: ReadonlyArray<StoredTable> }
  | { readonly ok: false; readonly problem: string }

const noIdentity = "the application's UPDATE and DELETE fail once the table is published " +
  `("cannot update table ... because it does not have a replica identity and publishes updates")`

const keyText = (table: StoredTable) => {
  const columns = table.keyColumns ?? []
  return columns.includes("order_id") ? `(${columns.join(", ")})` : `(${columns.join(", ")}), which does not include order_id`
}

/** What the table's identity is, and what is wrong with it for capture. */
export const describeIdentity = (table: StoredTable): string => {
  switch (table.identity) {
    case "f":
      return `${table.sql} has REPLICA IDENTITY FULL`
    case "n":
      return `${table.sql} has REPLICA IDENTITY NOTHING: ${noIdentity}`
    case "i":
      return `${table.sql} has REPLICA IDENTITY USING INDEX ${keyText(table)}`
    default:
      return table.keyColumns === null
        ? `${table.sql} has REPLICA IDENTITY DEFAULT and no primary key: ${noIdentity}`
        : `${table.sql} has REPLICA IDENTITY DEFAULT, its primary key ${keyText(table)}`
  }
}

/**
 * Logical capture needs REPLICA IDENTITY FULL on every table holding the rows. Under DEFAULT or an
 * index, pgoutput sends an unchanged value stored out of line (TOAST, a row over ~2 kB) as
 * "unchanged", so an update would arrive without it; under FULL the old row carries every value
 * (flattened) and the new row's missing ones are filled from it. FULL also covers order_id for
 * deletes, whatever keys the table has. Tables this role owns are set to FULL; otherwise refused,
 * with the statements that fix it.
 */
export const planReplicaIdentity = (table: string, stored: ReadonlyArray<StoredTable>): IdentityPlan => {
  const notFull = stored.filter((t) => t.identity !== "f")
  if (notFull.length === 0 || notFull.every((t) => t.owned)) return { ok: true, setFull: notFull }
  return {
    ok: false,
    problem: `logical capture of table ${table} needs REPLICA IDENTITY FULL (an update must carry every column, including ` +
      `unchanged values stored out of line, and a delete its order_id), and this role does not own it: ` +
      `${notFull.map(describeIdentity).join("; ")}. As the table's owner run ` +
      notFull.map((t) => `ALTER TABLE ${t.sql} REPLICA IDENTITY FULL;`).join(" ")
  }
}

/**
 * The identity of `oid`'s stored tables: itself, or the leaves of its partition tree. `key_columns`
 * are the primary key's under DEFAULT, the identity index's under USING INDEX.
 */
export const storedTables = (pool: pg.Pool, oid: number) =>
  query<{ sql: string; identity: string; key_columns: Array<string> | null; owned: boolean }>(
    pool,
    `SELECT format('%I.%I', n.nspname, c.relname) AS sql, c.relreplident AS identity,
        pg_has_role(current_user, c.relowner, 'USAGE') AS owned,
        (SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_index i
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
          WHERE i.indrelid = c.oid AND CASE c.relreplident WHEN 'd' THEN i.indisprimary WHEN 'i' THEN i.indisreplident ELSE false END
        ) AS key_columns
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE (c.oid = $1 AND c.relkind = 'r')
        OR c.oid IN (SELECT relid FROM pg_partition_tree($1::oid::regclass) WHERE isleaf)
      ORDER BY c.relname`,
    [oid]
  ).pipe(Effect.map((rows) => rows.map((r): StoredTable => ({ sql: r.sql, identity: r.identity, keyColumns: r.key_columns, owned: r.owned }))))

/**
 * ALTER TABLE ... REPLICA IDENTITY FULL, waiting at most 10 s for the table's lock (it queues behind
 * long transactions, and the application's statements would queue behind it): a timeout fails as a
 * connection error, retried with backoff.
 */
export const setFullIdentity = Effect.fn("LogicalCapture.setFullIdentity")(function*(pool: pg.Pool, table: StoredTable) {
  yield* Effect.scoped(Effect.gen(function*() {
    const client = yield* reservedClient(pool)
    yield* query(client, "BEGIN")
    yield* query(client, "SET LOCAL lock_timeout = '10s'")
    yield* query(client, `ALTER TABLE ${table.sql} REPLICA IDENTITY FULL`)
    yield* query(client, "COMMIT")
  }))
  yield* Effect.logInfo("replica identity set to FULL").pipe(
    Effect.annotateLogs({ table: table.sql, was: describeIdentity(table) })
  )
})
