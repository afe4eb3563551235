import { readdirSync } from "node:fs"
import { join } from "node:path"
import { StackError, say } from "./log.ts"
import { repoRoot } from "./paths.ts"
import { commandExists, run } from "./proc.ts"

/**
 * The machine's PostgreSQL, reached as a superuser through psql (the same defaults as `psql -h 127.0.0.1
 * -U postgres`, overridable with the standard PGHOST/PGPORT/PGUSER variables). Everything here is
 * idempotent: running it twice changes nothing.
 */
export interface PgAdminTarget {
  readonly host: string
  readonly port: number
  readonly user: string
}

export const pgAdminTarget = (): PgAdminTarget => ({
  host: process.env["PGHOST"] || "127.0.0.1",
  port: Number(process.env["PGPORT"] || 5432),
  user: process.env["PGUSER"] || "postgres"
})

/** Defaults of the reference design (configs/orders_stream.yml). */
export const DEFAULT_ROLE = "student"
export const DEFAULT_PASSWORD = "student123"
export const DEFAULT_DATABASE = "food_delivery_db"

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/

const identifier = (kind: string, value: string): string => {
  if (!IDENTIFIER.test(value)) throw new StackError(`invalid ${kind} name ${JSON.stringify(value)}: expected [a-z_][a-z0-9_]*`)
  return value
}

const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`

/** Quiet psql that stops at the first error; NOTICEs such as "already exists, skipping" are suppressed. */
export const psql = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv, input?: string) =>
  run("psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", ...args], {
    env: { ...process.env, PGCONNECT_TIMEOUT: "5", PGOPTIONS: "-c client_min_messages=warning", ...env },
    ...(input === undefined ? {} : { input }),
    timeoutMs: 60_000
  })

export const adminEnv = (target: PgAdminTarget): NodeJS.ProcessEnv => ({
  PGHOST: target.host,
  PGPORT: String(target.port),
  PGUSER: target.user,
  PGDATABASE: "postgres"
})

export const describeTarget = (target: PgAdminTarget) => `${target.user}@${target.host}:${target.port}`

/** Why the superuser connection is not usable, or null when it is. */
export const localPostgresProblem = async (target: PgAdminTarget = pgAdminTarget()): Promise<string | null> => {
  if (!commandExists("psql")) return "psql is not installed (Debian/Ubuntu: sudo apt-get install -y postgresql-client)"
  const result = await psql(["-Atc", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"], adminEnv(target))
  if (result.code !== 0) {
    return `cannot connect to PostgreSQL as ${describeTarget(target)} (${result.stderr.trim().split("\n")[0]}). ` +
      "Start it (Debian: sudo pg_ctlcluster 15 main start) or point PGHOST/PGPORT/PGUSER at a superuser."
  }
  if (result.stdout.trim() !== "t") return `${describeTarget(target)} is not a superuser; set PGUSER to one`
  return null
}

export interface EnsureLocalPostgresOptions {
  /** Database to create (owned by the role); default food_delivery_db. Tests use their own. */
  readonly database?: string
  readonly role?: string
  readonly password?: string
  /** Apply db/*.sql in order, connected as the role (default true). */
  readonly applyDbScripts?: boolean
}

export interface LocalPostgres {
  /** postgres://role:password@host:port/database */
  readonly pgUrl: string
  readonly database: string
  readonly role: string
}

/**
 * Creates (if missing) the login role with its password, grants it pg_read_all_stats (the producer
 * reads other sessions' xact_start) and REPLICATION (logical capture), creates the database owned by
 * it, applies db/*.sql as it and makes it the source table's owner (CREATE PUBLICATION needs that).
 * Never drops anything. The server's wal_level is `ensureLogicalWal`'s business (it may restart the server).
 */
export const ensureLocalPostgres = async (options: EnsureLocalPostgresOptions = {}): Promise<LocalPostgres> => {
  const target = pgAdminTarget()
  const role = identifier("role", options.role ?? DEFAULT_ROLE)
  const database = identifier("database", options.database ?? DEFAULT_DATABASE)
  const password = options.password ?? DEFAULT_PASSWORD

  const problem = await localPostgresProblem(target)
  if (problem !== null) throw new StackError(problem)

  // CREATE DATABASE cannot run inside a DO block, hence psql's \gexec for the conditional.
  const setup = `
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${literal(role)}) THEN
    CREATE ROLE ${role} LOGIN PASSWORD ${literal(password)};
  END IF;
EXCEPTION WHEN duplicate_object THEN NULL; -- created concurrently
END
$$;
DO $$
BEGIN
  IF NOT pg_has_role(${literal(role)}, 'pg_read_all_stats', 'MEMBER') THEN
    GRANT pg_read_all_stats TO ${role};
  END IF;
  -- capture.mode logical streams through a replication connection (a walsender).
  IF NOT (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = ${literal(role)}) THEN
    ALTER ROLE ${role} REPLICATION;
  END IF;
END
$$;
SELECT format('CREATE DATABASE %I OWNER %I', ${literal(database)}, ${literal(role)})
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${literal(database)}) \\gexec
`
  const result = await psql(["-f", "-"], adminEnv(target), setup)
  if (result.code !== 0) {
    throw new StackError(`could not prepare role ${role} and database ${database} as ${describeTarget(target)}:\n${result.stderr.trim()}`)
  }

  // A URL needs a TCP host; a socket directory in PGHOST means the server is local.
  const urlHost = target.host.startsWith("/") ? "127.0.0.1" : target.host
  const pgUrl = `postgres://${role}:${encodeURIComponent(password)}@${urlHost}:${target.port}/${database}`
  if (options.applyDbScripts ?? true) {
    // Before the scripts: they insert the sample rows as the role, which needs the table to be its own.
    await ensureTableOwner(target, database, role, SOURCE_TABLE)
    const applied = await applyDbScripts({ host: target.host, port: target.port, user: role }, password, database)
    say(`PostgreSQL ${database}: role ${role} ready (REPLICATION, owns "${SOURCE_TABLE}"), applied ${applied.join(", ")}`)
  }
  return { pgUrl, database, role }
}

/** The table db/001_orders.sql creates. */
export const SOURCE_TABLE = "2025em1100506_orders"

/**
 * CREATE PUBLICATION ... FOR TABLE needs the table's owner. db/*.sql run as the role create it owned
 * by the role; a table created earlier by someone else (e.g. by hand as postgres) is handed over,
 * with its sequence and indexes.
 */
const ensureTableOwner = async (target: PgAdminTarget, database: string, role: string, table: string): Promise<void> => {
  const sql = `
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = ${literal(table)} AND tableowner <> ${literal(role)}) THEN
    EXECUTE format('ALTER TABLE public.%I OWNER TO %I', ${literal(table)}, ${literal(role)});
  END IF;
END
$$;
`
  const result = await psql(["-f", "-"], { ...adminEnv(target), PGDATABASE: database }, sql)
  if (result.code !== 0) throw new StackError(`could not make ${role} the owner of "${table}" in ${database}:\n${result.stderr.trim()}`)
}

/** db/*.sql in name order: the same files docker's postgres image runs from /docker-entrypoint-initdb.d. */
export const dbScripts = (): string[] => {
  const dir = join(repoRoot, "db")
  return readdirSync(dir).filter((name) => name.endsWith(".sql")).sort().map((name) => join(dir, name))
}

/** Applies db/*.sql connected as `target.user`; the scripts are idempotent. Returns the file names. */
export const applyDbScripts = async (target: PgAdminTarget, password: string, database: string): Promise<string[]> => {
  const env = { PGHOST: target.host, PGPORT: String(target.port), PGUSER: target.user, PGPASSWORD: password, PGDATABASE: database }
  const applied: string[] = []
  for (const file of dbScripts()) {
    const result = await psql(["-f", file], env)
    if (result.code !== 0) throw new StackError(`applying ${file} to ${database} failed:\n${result.stderr.trim()}`)
    applied.push(file.slice(file.lastIndexOf("/") + 1))
  }
  return applied
}
