import { Effect } from "effect"
import type pg from "pg"
import { quoteIdentifier, type SqlIdentifier } from "../../../config/Identifiers.ts"
import { CaptureError } from "./CaptureError.ts"
import { query } from "./pgConnection.ts"
import { planReplicaIdentity, setFullIdentity, type StoredTable, storedTables } from "./replicaIdentity.ts"

export interface CapturedTable {
  /**
   * pg_class oid at start. Relation messages are matched by schema and name (a partitioned table's
   * changes arrive under its root's); one of our name with another oid, or of our oid under another
   * name, means the table was recreated or renamed: capture stops (sourceTableCheck.ts).
   */
  readonly oid: number
  readonly schema: string
  readonly name: string
  readonly owned: boolean
  /** relkind 'p': published with publish_via_partition_root, so changes arrive under this name. */
  readonly partitioned: boolean
  /** Stored tables (the table or its partitions) to set to REPLICA IDENTITY FULL before publishing. */
  readonly setFull: ReadonlyArray<StoredTable>
}

const misconfigured = (detail: string) => new CaptureError({ reason: "misconfigured", detail })

/** What the publication publishes: every change of an order, and a TRUNCATE (it empties the lake's table too). */
const publishes = "insert,update,delete,truncate"

interface Settings {
  readonly wal_level: string
  readonly max_replication_slots: number
  readonly max_wal_senders: number
  readonly slots_used: number
  readonly role: string
  readonly replication: boolean
  readonly superuser: boolean
}

/**
 * What logical capture needs from the database, checked before anything is created, each failure
 * with the statement that fixes it (PostgreSQL's own errors name the problem, not the cure).
 */
export const preflight = Effect.fn("LogicalCapture.preflight")(function*(pool: pg.Pool, table: SqlIdentifier, slot: string) {
  const [s] = yield* query<Settings>(pool, `SELECT current_setting('wal_level') AS wal_level,
      current_setting('max_replication_slots')::int AS max_replication_slots,
      current_setting('max_wal_senders')::int AS max_wal_senders,
      (SELECT count(*) FROM pg_replication_slots WHERE slot_name <> $1)::int AS slots_used,
      current_user AS role, r.rolreplication AS replication, r.rolsuper AS superuser
    FROM pg_roles r WHERE r.rolname = current_user`, [slot])
  const settings = s!
  const restart = "then restart PostgreSQL (e.g. pg_ctlcluster 15 main restart; a reload is not enough)"
  if (settings.wal_level !== "logical") {
    return yield* misconfigured(
      `wal_level is ${settings.wal_level}, logical capture needs logical: as a superuser run ` +
        `ALTER SYSTEM SET wal_level = logical; ${restart}`
    )
  }
  if (settings.max_replication_slots < 1) {
    return yield* misconfigured(`max_replication_slots is 0: run ALTER SYSTEM SET max_replication_slots = 10; ${restart}`)
  }
  if (settings.max_wal_senders < 1) {
    return yield* misconfigured(`max_wal_senders is 0: run ALTER SYSTEM SET max_wal_senders = 10; ${restart}`)
  }
  const [ownSlot] = yield* query<{ n: number }>(pool, `SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot])
  if (ownSlot!.n === 0 && settings.slots_used >= settings.max_replication_slots) {
    return yield* misconfigured(
      `all ${settings.max_replication_slots} replication slots are in use: drop unused ones ` +
        `(SELECT slot_name, active FROM pg_replication_slots; SELECT pg_drop_replication_slot('<name>')) ` +
        `or raise max_replication_slots (ALTER SYSTEM SET max_replication_slots = ...; ${restart})`
    )
  }
  if (!settings.replication && !settings.superuser) {
    return yield* misconfigured(
      `role ${settings.role} lacks the REPLICATION attribute (PostgreSQL: "must be superuser or replication role to start walsender"): ` +
        `as a superuser run ALTER ROLE ${quoteIdentifier(settings.role as SqlIdentifier)} REPLICATION`
    )
  }
  const [found] = yield* query<{ oid: number; schema: string; name: string; kind: string; owned: boolean; readable: boolean }>(
    pool,
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
        pg_has_role(current_user, c.relowner, 'USAGE') AS owned,
        has_table_privilege(c.oid, 'SELECT') AS readable
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1)`,
    [quoteIdentifier(table)]
  )
  if (found === undefined) return yield* misconfigured(`table ${table} does not exist (postgres.table)`)
  if (!found.readable) {
    return yield* misconfigured(`role ${settings.role} cannot read table ${table} (the snapshot reads it): GRANT SELECT ON ${quoteIdentifier(table)} TO ${settings.role}`)
  }
  if (found.kind !== "r" && found.kind !== "p") {
    return yield* misconfigured(`${table} is not a table (relkind ${found.kind}): postgres.table must name a table or a partitioned table`)
  }
  // Refused before anything is created: a published table without a replica identity fails the
  // application's UPDATE and DELETE.
  const identity = planReplicaIdentity(table, yield* storedTables(pool, found.oid))
  if (!identity.ok) return yield* misconfigured(identity.problem)
  return {
    oid: found.oid,
    schema: found.schema,
    name: found.name,
    owned: found.owned,
    partitioned: found.kind === "p",
    setFull: identity.setFull
  } satisfies CapturedTable
})

/**
 * The publication of the captured table, created when missing (needs ownership of the table);
 * an existing one must publish the table's inserts, updates, deletes and truncates, a partitioned
 * table's under its own name (publish_via_partition_root). One made before truncates were captured
 * is altered to publish them when this role owns it. Every refusal comes before the first change to
 * the database: the replica identity is set, then the publication created or altered.
 */
export const ensurePublication = Effect.fn("LogicalCapture.ensurePublication")(function*(
  pool: pg.Pool,
  publication: SqlIdentifier,
  table: CapturedTable
) {
  const pub = quoteIdentifier(publication)
  const tableSql = quoteIdentifier(table.name as SqlIdentifier)
  const check = query<PublicationRow>(
    pool,
    `SELECT p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot, pg_has_role(current_user, p.pubowner, 'USAGE') AS owned,
        EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = p.pubname AND t.schemaname = $2 AND t.tablename = $3) AS covers
      FROM pg_publication p WHERE p.pubname = $1`,
    [publication, table.schema, table.name]
  )
  const options = `publish = '${publishes}'${table.partitioned ? ", publish_via_partition_root = true" : ""}`
  const [before] = yield* check
  if (before === undefined && !table.owned) {
    return yield* misconfigured(
      `publication ${publication} does not exist and creating it needs ownership of table ${table.name} ("must be owner of table"): ` +
        `as the table's owner run CREATE PUBLICATION ${pub} FOR TABLE ${tableSql} WITH (${options}), or ALTER TABLE ${tableSql} OWNER TO <this role>`
    )
  }
  const addTruncate = before !== undefined && !before.pubtruncate
  if (before !== undefined) yield* checkPublication(publication, table, before, addTruncate && before.owned)
  for (const stored of table.setFull) yield* setFullIdentity(pool, stored)
  if (addTruncate) {
    yield* query(pool, `ALTER PUBLICATION ${pub} SET (publish = '${publishes}')`)
    yield* Effect.logInfo("publication altered to publish truncates").pipe(Effect.annotateLogs({ publication, table: table.name }))
  }
  if (before !== undefined) return
  yield* query(pool, `CREATE PUBLICATION ${pub} FOR TABLE ${tableSql} WITH (${options})`).pipe(
    // Created at the same moment by another producer: check what is there now.
    Effect.catchIf((error) => String(error.cause).includes("already exists"), () => Effect.void)
  )
  yield* Effect.logInfo("publication created").pipe(Effect.annotateLogs({ publication, table: table.name }))
  const [existing] = yield* check
  if (existing === undefined) return yield* misconfigured(`publication ${publication} could not be created`)
  yield* checkPublication(publication, table, existing, false)
})

interface PublicationRow {
  readonly pubinsert: boolean
  readonly pubupdate: boolean
  readonly pubdelete: boolean
  readonly pubtruncate: boolean
  readonly pubviaroot: boolean
  /** Whether this role owns the publication (and so may alter it). */
  readonly owned: boolean
  readonly covers: boolean
}

/** Refuses a publication that does not publish what capture needs; `truncateAdded`: a missing truncate is about to be added. */
const checkPublication = (publication: SqlIdentifier, table: CapturedTable, existing: PublicationRow, truncateAdded: boolean) =>
  Effect.gen(function*() {
    const pub = quoteIdentifier(publication)
    const tableSql = quoteIdentifier(table.name as SqlIdentifier)
    // Without it the changes arrive under each partition's name, none under the table's: all ignored.
    if (table.partitioned && !existing.pubviaroot) {
      return yield* misconfigured(
        `publication ${publication} publishes the partitions of ${table.name} under their own names: ` +
          `run ALTER PUBLICATION ${pub} SET (publish_via_partition_root = true)`
      )
    }
    if (!existing.covers) {
      return yield* misconfigured(
        `publication ${publication} exists but does not publish table ${table.name}: run ALTER PUBLICATION ${pub} ADD TABLE ${tableSql}` +
          ` (a table dropped and created again also needs a new snapshot: npm run producer -- --resnapshot)`
      )
    }
    if (!existing.pubinsert || !existing.pubupdate || !existing.pubdelete || (!existing.pubtruncate && !truncateAdded)) {
      return yield* misconfigured(
        `publication ${publication} does not publish every insert, update, delete and truncate: as its owner run ALTER PUBLICATION ${pub} SET (publish = '${publishes}')`
      )
    }
  })
