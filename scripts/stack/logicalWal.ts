import { existsSync } from "node:fs"
import { say } from "./log.ts"
import { adminEnv, describeTarget, type PgAdminTarget, pgAdminTarget, psql } from "./postgres.ts"
import { commandExists, run, sleep } from "./proc.ts"

/**
 * capture.mode logical needs wal_level = logical, and replication slots and WAL senders (PostgreSQL
 * 15 has 10 of each by default). All three only change with a server restart. `ensureLogicalWal`
 * sets what is missing with ALTER SYSTEM and restarts the machine's cluster itself when it can
 * (Debian's pg_ctlcluster, as root or the cluster's owner); otherwise it prints the command to run and
 * the stack stays in poll mode. Nothing is touched when the server already has them.
 */
export interface LogicalWal {
  /** wal_level as the server now runs with it. */
  readonly walLevel: string
  readonly logical: boolean
  /** What a person must do to get logical mode, when it is not there. */
  readonly advice: string | null
}

const wanted: ReadonlyArray<readonly [name: string, ok: (value: string) => boolean, value: string]> = [
  ["wal_level", (value) => value === "logical", "logical"],
  ["max_replication_slots", (value) => Number(value) > 0, "10"],
  ["max_wal_senders", (value) => Number(value) > 0, "10"]
]

const query = async (target: PgAdminTarget, sql: string): Promise<string | null> => {
  const result = await psql(["-Atc", sql], adminEnv(target))
  return result.code === 0 ? result.stdout.trim() : null
}

const settingsOf = async (target: PgAdminTarget): Promise<Map<string, string> | null> => {
  const names = wanted.map(([name]) => `'${name}'`).join(", ")
  const out = await query(target, `SELECT name || '=' || setting FROM pg_settings WHERE name IN (${names})`)
  if (out === null) return null
  return new Map(out.split("\n").filter(Boolean).map((line) => line.split("=", 2) as [string, string]))
}

const missingOf = (settings: Map<string, string>) => wanted.filter(([name, ok]) => !ok(settings.get(name) ?? ""))

const isLocalHost = (host: string) => host.startsWith("/") || ["127.0.0.1", "localhost", "::1"].includes(host)

/** The Debian cluster (version, name) listening on the port, from pg_lsclusters; null elsewhere. */
const debianClusterOn = async (port: number): Promise<{ version: string; name: string; owner: string } | null> => {
  if (!commandExists("pg_lsclusters") || !commandExists("pg_ctlcluster")) return null
  const listed = await run("pg_lsclusters", ["--no-header"], { timeoutMs: 15_000 })
  if (listed.code !== 0) return null
  for (const line of listed.stdout.split("\n")) {
    const [version, name, clusterPort, , owner] = line.trim().split(/\s+/)
    if (version !== undefined && name !== undefined && owner !== undefined && Number(clusterPort) === port) return { version, name, owner }
  }
  return null
}

/** Where systemd runs (a desktop, a VM), pg_ctlcluster hands over to it; in a container there is none to hand to. */
const restartArgs = (version: string, name: string) =>
  existsSync("/run/systemd/system") ? [version, name, "restart"] : ["--skip-systemctl-redirect", version, name, "restart"]

const waitForServer = async (target: PgAdminTarget, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if ((await query(target, "SELECT 1")) === "1") return true
    await sleep(500)
  }
  return false
}

export const ensureLogicalWal = async (target: PgAdminTarget = pgAdminTarget()): Promise<LogicalWal> => {
  const before = await settingsOf(target)
  if (before === null) return { walLevel: "unknown", logical: false, advice: `cannot read settings as ${describeTarget(target)}` }
  const missing = missingOf(before)
  if (missing.length === 0) return { walLevel: before.get("wal_level") ?? "logical", logical: true, advice: null }

  for (const [name, , value] of missing) {
    if ((await query(target, `ALTER SYSTEM SET ${name} = '${value}'`)) === null) {
      return {
        walLevel: before.get("wal_level") ?? "unknown",
        logical: false,
        advice: `ALTER SYSTEM SET ${name} = '${value}' failed as ${describeTarget(target)}; set it in postgresql.conf and restart PostgreSQL`
      }
    }
  }
  const changes = missing.map(([name, , value]) => `${name} = ${value}`).join(", ")
  const cluster = isLocalHost(target.host) ? await debianClusterOn(target.port) : null
  const dataDir = await query(target, "SHOW data_directory")
  const manual = cluster !== null
    ? `sudo pg_ctlcluster ${restartArgs(cluster.version, cluster.name).join(" ")}`
    : `pg_ctl restart -D ${dataDir ?? "<data directory>"} (as the server's owner), or restart the PostgreSQL service`
  const canRestart = cluster !== null && (process.getuid?.() === 0 || process.env["USER"] === cluster.owner)
  if (!canRestart) {
    return {
      walLevel: before.get("wal_level") ?? "unknown",
      logical: false,
      advice: `set ${changes} (ALTER SYSTEM; takes effect at the next restart). Restart PostgreSQL: ${manual}`
    }
  }

  say(`PostgreSQL needs ${changes} for capture.mode logical: set with ALTER SYSTEM; restarting cluster ${cluster.version}/${cluster.name} ` +
    "(open connections to it are closed)")
  const args = restartArgs(cluster.version, cluster.name)
  const restarted = await run("pg_ctlcluster", args, { timeoutMs: 120_000 })
  const back = await waitForServer(target, 60_000)
  const after = back ? await settingsOf(target) : null
  if (restarted.code !== 0 || after === null || missingOf(after).length > 0) {
    return {
      walLevel: after?.get("wal_level") ?? "unknown",
      logical: false,
      advice: `the restart did not bring ${changes} (pg_ctlcluster ${args.join(" ")}: exit ${restarted.code}` +
        `${restarted.stderr.trim() === "" ? "" : `, ${restarted.stderr.trim().split("\n")[0]}`}). Restart PostgreSQL: ${manual}`
    }
  }
  say(`PostgreSQL restarted with wal_level = ${after.get("wal_level")}`)
  return { walLevel: after.get("wal_level") ?? "logical", logical: true, advice: null }
}

/** wal_level as the server runs with it, read through the superuser; null when unreachable. */
export const currentWalLevel = (target: PgAdminTarget = pgAdminTarget()): Promise<string | null> =>
  query(target, "SHOW wal_level")
