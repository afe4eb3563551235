/**
 * What the logical-capture tests need from PostgreSQL beyond the test role: wal_level = logical
 * (globalSetup, when it uses this machine's server), the REPLICATION attribute, a role without it,
 * and clean-up of slots. Admin statements run as a superuser: this machine's (PGUSER, default
 * postgres, as scripts/stack/postgres.ts reaches it) with the local stack, else the test URL's role
 * (a container's or a stack's own superuser).
 */
import { execFileSync } from "node:child_process"
import { readdirSync } from "node:fs"
import { Redacted } from "effect"
import pg from "pg"
import { pgAdminTarget } from "../../scripts/stack/postgres.ts"
import type { Endpoints } from "./endpointsContext.ts"
import { deleteTopics } from "./kafka.ts"

const databaseOf = (pgUrl: string) => new URL(pgUrl).pathname.slice(1)
export const roleOf = (pgUrl: string) => decodeURIComponent(new URL(pgUrl).username)

export const adminUrlOf = (endpoints: Endpoints): string => {
  if (endpoints.source !== "local-stack") return endpoints.pgUrl
  const target = pgAdminTarget()
  const host = target.host.startsWith("/") ? "127.0.0.1" : target.host
  const password = process.env["PGPASSWORD"] ? `:${encodeURIComponent(process.env["PGPASSWORD"])}` : ""
  return `postgres://${encodeURIComponent(target.user)}${password}@${host}:${target.port}/${databaseOf(endpoints.pgUrl)}`
}

export const withClient = async <A>(url: string, use: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

export const adminQuery = (endpoints: Endpoints, sql: string, values?: ReadonlyArray<unknown>) =>
  withClient(adminUrlOf(endpoints), async (client) => (await client.query(sql, values === undefined ? undefined : [...values])).rows)

/** The logical-capture connection settings for the test URL (plaintext, as the suite's servers speak). */
export const pgSettingsFromUrl = (pgUrl: string, applicationName: string) => {
  const url = new URL(pgUrl)
  return {
    host: url.hostname,
    port: Number(url.port || 5432),
    database: url.pathname.slice(1),
    user: decodeURIComponent(url.username),
    password: Redacted.make(decodeURIComponent(url.password)),
    applicationName,
    ssl: false as const
  }
}

/**
 * A logical pipeline's leftovers: its slot, publication, side tables and their topics, then the
 * pipeline itself. Each step may find nothing to drop.
 */
export const closeLogicalPipeline = async (
  endpoints: Endpoints,
  pipeline: { readonly table: string; readonly pool: pg.Pool; readonly close: () => Promise<void> },
  extra: { readonly tables: ReadonlyArray<string>; readonly topics: ReadonlyArray<string> }
): Promise<void> => {
  const q = (sql: string) => pipeline.pool.query(sql).catch(() => undefined)
  await q(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${pipeline.table.toLowerCase()}_slot'`)
  await q(`DROP PUBLICATION IF EXISTS "${pipeline.table}_pub"`)
  for (const table of extra.tables) await q(`DROP TABLE IF EXISTS "${table}"`)
  await deleteTopics(endpoints.kafkaBrokers, [...extra.topics]).catch(() => undefined)
  await pipeline.close()
}

/** The test role may stream (ALTER ROLE ... REPLICATION), idempotently. */
export const grantReplication = async (endpoints: Endpoints): Promise<void> => {
  const role = roleOf(endpoints.pgUrl)
  const [row] = await adminQuery(endpoints, "SELECT rolreplication OR rolsuper AS ok FROM pg_roles WHERE rolname = $1", [role])
  if (row?.["ok"] !== true) await adminQuery(endpoints, `ALTER ROLE "${role.replaceAll('"', '""')}" REPLICATION`)
}

/** Drops a slot if it exists (terminating a leftover holder first). */
export const dropSlotQuietly = async (endpoints: Endpoints, slot: string): Promise<void> => {
  await adminQuery(endpoints, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", [slot])
    .catch(() => undefined)
  for (let i = 0; i < 20; i++) {
    try {
      await adminQuery(endpoints, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [slot])
      return
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
}

const log = (line: string) => process.stderr.write(`[integration] ${line}\n`)

const psqlAdmin = (sql: string): string => {
  const target = pgAdminTarget()
  return execFileSync("psql", ["-X", "-Atc", sql], {
    env: { ...process.env, PGHOST: target.host, PGPORT: String(target.port), PGUSER: target.user, PGDATABASE: "postgres", PGCONNECT_TIMEOUT: "5" },
    encoding: "utf8"
  }).trim()
}

/**
 * The test files run side by side, each with its own slots (and a WAL sender while a producer
 * streams), so the suite wants more than PostgreSQL's default 10 of each; all three settings only
 * change with a restart, which is done at most once.
 */
const wanted: ReadonlyArray<readonly [name: string, ok: (value: string) => boolean, value: string]> = [
  ["wal_level", (value) => value === "logical", "logical"],
  ["max_replication_slots", (value) => Number(value) >= 32, "32"],
  ["max_wal_senders", (value) => Number(value) >= 32, "32"]
]

/**
 * This machine's PostgreSQL with wal_level = logical and room for the suite's slots, as .ci/run sets
 * it: ALTER SYSTEM, then a restart of the cluster, only when a setting is short.
 */
export const ensureLocalLogicalWal = (): void => {
  const missing = wanted.filter(([name, ok]) => !ok(psqlAdmin(`SHOW ${name}`)))
  if (missing.length === 0) return
  const versions = readdirSync("/etc/postgresql").sort((a, b) => Number(a) - Number(b))
  const version = versions[versions.length - 1]
  const changes = missing.map(([name, , value]) => `${name} = ${value}`).join(", ")
  if (version === undefined) throw new Error(`no /etc/postgresql cluster to restart; set ${changes} and restart PostgreSQL`)
  log(`setting ${changes} and restarting PostgreSQL ${version} main (logical capture tests need it)`)
  for (const [name, , value] of missing) psqlAdmin(`ALTER SYSTEM SET ${name} = '${value}'`)
  execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart"], { stdio: "inherit" })
  for (let i = 0; i < 60; i++) {
    try {
      execFileSync("pg_isready", ["-h", pgAdminTarget().host, "-p", String(pgAdminTarget().port), "-q"])
      break
    } catch {
      execFileSync("sleep", ["1"])
    }
  }
  const still = wanted.filter(([name, ok]) => !ok(psqlAdmin(`SHOW ${name}`)))
  if (still.length > 0) throw new Error(`${still.map(([name]) => `${name} is ${psqlAdmin(`SHOW ${name}`)}`).join(", ")} after the restart`)
}

/** Slots are named after the tests' unique tables: `<prefix>_<base-36 ms>_<6 hex>…_slot` (test/support/names.ts). */
const testSlot = /^[a-z][a-z0-9_]*?_([0-9a-z]{8,9})_[0-9a-f]{6}(?:_[a-z0-9_]*)?_slot$/

/**
 * Drops the inactive slots earlier test runs left behind (a run killed mid-test cannot drop its
 * own), so they neither fill max_replication_slots nor pin WAL. Only slots named like the tests'
 * and made over two hours ago: a suite running beside this one keeps its own.
 */
export const dropStaleTestSlots = (): void => {
  const listed = psqlAdmin("SELECT slot_name FROM pg_replication_slots WHERE NOT active")
  const cutoff = Date.now() - 2 * 3600_000
  const stale = listed.split("\n").filter((slot) => {
    const made = testSlot.exec(slot)?.[1]
    return made !== undefined && parseInt(made, 36) < cutoff
  })
  for (const slot of stale) psqlAdmin(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${slot}' AND NOT active`)
  if (stale.length > 0) log(`dropped ${stale.length} inactive replication slot(s) left by earlier test runs: ${stale.join(", ")}`)
}
