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
  return yield* inspectTable(pool, quoteIdentifier(table), table, "postgres.table", settings.role)
})

/**
 * A table to capture: it exists, this role may read it (the snapshot does), it is a table, and its
 * replica identity is FULL or can be made so. `sql`: the table as SQL (quoted); `label`: as config names it.
 */
export const inspectTable = Effect.fn("LogicalCapture.inspectTable")(function*(pool: pg.Pool, sql: string, label: string, configKey: string, role: string) {
  const [found] = yield* query<{ oid: number; schema: string; name: string; kind: string; owned: boolean; readable: boolean }>(
    pool,
    `SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
        pg_has_role(current_user, c.relowner, 'USAGE') AS owned,
        has_table_privilege(c.oid, 'SELECT') AS readable
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1)`,
    [sql]
  )
  if (found === undefined) return yield* misconfigured(`table ${label} does not exist (${configKey})`)
  if (!found.readable) {
    return yield* misconfigured(`role ${role} cannot read table ${label} (the snapshot reads it): GRANT SELECT ON ${sql} TO ${role}`)
  }
  if (found.kind !== "r" && found.kind !== "p") {
    return yield* misconfigured(`${label} is not a table (relkind ${found.kind}): ${configKey} must name a table or a partitioned table`)
  }
  // Refused before anything is created: a published table without a replica identity fails the
  // application's UPDATE and DELETE.
  const identity = planReplicaIdentity(label, yield* storedTables(pool, found.oid))
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
 * The publication of the captured tables (the orders table first), created when missing (needs
 * ownership of the tables); an existing one must publish the tables' inserts, updates, deletes and
 * truncates, a partitioned table's under its own name (publish_via_partition_root). One made before
 * truncates were captured is altered to publish them, and a table added to the configuration is
 * added to it, when this role owns the publication. Every refusal comes before the first change to
 * the database: the replica identities are set, then the publication created or altered.
 */
export const ensurePublication = Effect.fn("LogicalCapture.ensurePublication")(function*(
  pool: pg.Pool,
  publication: SqlIdentifier,
  tables: ReadonlyArray<CapturedTable>
) {
  const pub = quoteIdentifier(publication)
  const first = tables[0]!
  const check = Effect.gen(function*() {
    const [row] = yield* query<PublicationRow>(
      pool,
      `SELECT p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot, pg_has_role(current_user, p.pubowner, 'USAGE') AS owned
        FROM pg_publication p WHERE p.pubname = $1`,
      [publication]
    )
    if (row === undefined) return undefined
    const covered = yield* query<{ schemaname: string; tablename: string }>(
      pool,
      `SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1`,
      [publication]
    )
    const missing = tables.filter((t) => !covered.some((c) => c.schemaname === t.schema && c.tablename === t.name))
    return { ...row, missing }
  })
  const anyPartitioned = tables.some((t) => t.partitioned)
  const options = `publish = '${publishes}'${anyPartitioned ? ", publish_via_partition_root = true" : ""}`
  const before = yield* check
  const notOwned = tables.filter((t) => !t.owned)
  if (before === undefined && notOwned.length > 0) {
    const names = tables.map(tableSqlOf).join(", ")
    return yield* misconfigured(
      `publication ${publication} does not exist and creating it needs ownership of table ${notOwned.map((t) => t.name).join(", ")} ("must be owner of table"): ` +
        `as the table's owner run CREATE PUBLICATION ${pub} FOR TABLE ${names} WITH (${options}), or ALTER TABLE ${tableSqlOf(notOwned[0]!)} OWNER TO <this role>`
    )
  }
  const addTruncate = before !== undefined && !before.pubtruncate
  // Tables of the configuration the publication lacks, besides the orders table (which it must have:
  // a publication that lost it lost its changes): added when this role owns the publication and them.
  const toAdd = before === undefined ? [] : before.missing.filter((t) => t !== first)
  if (before !== undefined) yield* checkPublication(publication, tables, before, addTruncate && before.owned, toAdd)
  for (const table of tables) for (const stored of table.setFull) yield* setFullIdentity(pool, stored)
  if (addTruncate) {
    yield* query(pool, `ALTER PUBLICATION ${pub} SET (publish = '${publishes}')`)
    yield* Effect.logInfo("publication altered to publish truncates").pipe(Effect.annotateLogs({ publication, table: first.name }))
  }
  for (const table of toAdd) {
    yield* query(pool, `ALTER PUBLICATION ${pub} ADD TABLE ${tableSqlOf(table)}`)
    yield* Effect.logInfo("table added to the publication").pipe(Effect.annotateLogs({ publication, table: `${table.schema}.${table.name}` }))
  }
  if (before !== undefined) return
  yield* query(pool, `CREATE PUBLICATION ${pub} FOR TABLE ${tables.map(tableSqlOf).join(", ")} WITH (${options})`).pipe(
    // Created at the same moment by another producer: check what is there now.
    Effect.catchIf((error) => String(error.cause).includes("already exists"), () => Effect.void)
  )
  yield* Effect.logInfo("publication created").pipe(Effect.annotateLogs({ publication, table: tables.map((t) => t.name).join(",") }))
  const existing = yield* check
  if (existing === undefined) return yield* misconfigured(`publication ${publication} could not be created`)
  yield* checkPublication(publication, tables, existing, false, [])
})

/** The orders table as the reference design names it (unqualified); other tables schema-qualified. */
const tableSqlOf = (table: CapturedTable) =>
  table.schema === "public" ? quoteIdentifier(table.name as SqlIdentifier) : `"${table.schema}"."${table.name}"`

interface PublicationRow {
  readonly pubinsert: boolean
  readonly pubupdate: boolean
  readonly pubdelete: boolean
  readonly pubtruncate: boolean
  readonly pubviaroot: boolean
  /** Whether this role owns the publication (and so may alter it). */
  readonly owned: boolean
  /** The captured tables it does not publish. */
  readonly missing: ReadonlyArray<CapturedTable>
}

/**
 * Refuses a publication that does not publish what capture needs; `truncateAdded`: a missing
 * truncate is about to be added; `toAdd`: tables about to be added (when this role may).
 */
const checkPublication = (
  publication: SqlIdentifier,
  tables: ReadonlyArray<CapturedTable>,
  existing: PublicationRow,
  truncateAdded: boolean,
  toAdd: ReadonlyArray<CapturedTable>
) =>
  Effect.gen(function*() {
    const pub = quoteIdentifier(publication)
    // Without it the changes arrive under each partition's name, none under the table's: all ignored.
    const partitioned = tables.find((t) => t.partitioned)
    if (partitioned !== undefined && !existing.pubviaroot) {
      return yield* misconfigured(
        `publication ${publication} publishes the partitions of ${partitioned.name} under their own names: ` +
          `run ALTER PUBLICATION ${pub} SET (publish_via_partition_root = true)`
      )
    }
    const first = tables[0]!
    if (existing.missing.includes(first)) {
      return yield* misconfigured(
        `publication ${publication} exists but does not publish table ${first.name}: run ALTER PUBLICATION ${pub} ADD TABLE ${tableSqlOf(first)}` +
          ` (a table dropped and created again also needs a new snapshot: npm run producer -- --resnapshot)`
      )
    }
    const cannotAdd = toAdd.filter((t) => !existing.owned || !t.owned)
    if (cannotAdd.length > 0) {
      return yield* misconfigured(
        `publication ${publication} does not publish table ${cannotAdd.map((t) => `${t.schema}.${t.name}`).join(", ")} and this role may not add ` +
          `${cannotAdd.length === 1 ? "it" : "them"} (it must own the publication and the table): as their owner run ` +
          `ALTER PUBLICATION ${pub} ADD TABLE ${cannotAdd.map(tableSqlOf).join(", ")}`
      )
    }
    if (!existing.pubinsert || !existing.pubupdate || !existing.pubdelete || (!existing.pubtruncate && !truncateAdded)) {
      return yield* misconfigured(
        `publication ${publication} does not publish every insert, update, delete and truncate: as its owner run ALTER PUBLICATION ${pub} SET (publish = '${publishes}')`
      )
    }
  })
