import pg from "pg"
import { startTcpProxy } from "../../test/support/tcpProxy.ts"
import { commandExists, run } from "../stack/proc.ts"
import { sleep } from "./timing.ts"

/**
 * PostgreSQL going away mid-stream, two ways:
 *
 * - `cluster`: the machine's cluster itself, `pg_ctlcluster --skip-systemctl-redirect <version>
 *   <name> stop` (fast: every session terminated, open transactions rolled back, a shutdown
 *   checkpoint), down a few seconds, `start`. Real, and felt by every client of the server, so only
 *   where the run may (root or the cluster's owner, a local Debian cluster on the URL's port).
 * - `proxy`: the run's connections (its generator and both programs) go through a TCP proxy of the
 *   run's own; a restart cuts every connection through it, terminates their server-side backends
 *   (pg_terminate_backend by client port: open transactions roll back, the walsender ends) and
 *   refuses new connections for a few seconds. The same for the run's clients, nothing for others.
 */
export interface PgRestarter {
  readonly via: "cluster" | "proxy"
  /** The URL the run's clients and programs use (through the proxy, for `proxy`). */
  readonly pgUrl: string
  /** Takes PostgreSQL away for `downMs`, then back; resolves once it answers again. */
  readonly restart: (downMs: number) => Promise<{ downMs: number; startMs: number }>
  readonly close: () => Promise<void>
}

const isLocalHost = (host: string) => ["127.0.0.1", "localhost", "::1", "[::1]"].includes(host)

/** The Debian cluster on `port` and whether this process may restart it; a reason when it may not. */
export const localCluster = async (pgUrl: string): Promise<{ version: string; name: string } | { cannot: string }> => {
  const url = new URL(pgUrl)
  const port = Number(url.port || 5432)
  if (!isLocalHost(url.hostname)) return { cannot: `PostgreSQL at ${url.hostname} is not on this machine` }
  if (!commandExists("pg_lsclusters") || !commandExists("pg_ctlcluster")) return { cannot: "no pg_lsclusters/pg_ctlcluster (not a Debian cluster)" }
  const listed = await run("pg_lsclusters", ["--no-header"], { timeoutMs: 15_000 })
  for (const line of listed.stdout.split("\n")) {
    const [version, name, clusterPort, status, owner] = line.trim().split(/\s+/)
    if (version === undefined || name === undefined || Number(clusterPort) !== port) continue
    if (status !== "online") return { cannot: `cluster ${version}/${name} is ${status}` }
    if (process.getuid?.() !== 0 && process.env["USER"] !== owner) return { cannot: `not root nor ${owner}, the owner of cluster ${version}/${name}` }
    return { version, name }
  }
  return { cannot: `no local cluster listens on port ${port}` }
}

const answers = async (pgUrl: string): Promise<boolean> => {
  const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 2000 })
  client.on("error", () => undefined)
  try {
    await client.connect()
    await client.query("SELECT 1")
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => undefined)
  }
}

const waitUntilAnswers = async (pgUrl: string, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!(await answers(pgUrl))) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL did not come back within ${timeoutMs / 1000} s`)
    await sleep(250)
  }
}

export const clusterRestarter = (pgUrl: string, cluster: { version: string; name: string }): PgRestarter => ({
  via: "cluster",
  pgUrl,
  restart: async (downMs) => {
    const started = Date.now()
    const stop = await run("pg_ctlcluster", ["--skip-systemctl-redirect", cluster.version, cluster.name, "stop", "-m", "fast"], { timeoutMs: 120_000 })
    if (stop.code !== 0) throw new Error(`pg_ctlcluster stop: exit ${stop.code}: ${stop.stderr.trim()}`)
    const stopped = Date.now()
    await sleep(downMs)
    const start = await run("pg_ctlcluster", ["--skip-systemctl-redirect", cluster.version, cluster.name, "start"], { timeoutMs: 120_000 })
    if (start.code !== 0) throw new Error(`pg_ctlcluster start: exit ${start.code}: ${start.stderr.trim()}`)
    await waitUntilAnswers(pgUrl, 120_000)
    return { downMs: stopped - started + downMs, startMs: Date.now() - stopped - downMs }
  },
  close: async () => undefined
})

/** A TCP proxy in front of PostgreSQL that can cut its connections (and their backends). */
export const proxyRestarter = async (pgUrl: string): Promise<PgRestarter> => {
  const target = new URL(pgUrl)
  const targetHost = target.hostname
  const targetPort = Number(target.port || 5432)
  const proxy = await startTcpProxy(targetHost, targetPort)
  const proxied = new URL(pgUrl)
  proxied.hostname = "127.0.0.1"
  proxied.port = String(proxy.port())
  return {
    via: "proxy",
    pgUrl: proxied.toString(),
    restart: async (downMs) => {
      const started = Date.now()
      const ports = await proxy.down()
      // The backends behind the cut connections: gone, as a restart would leave them (a backend
      // only notices a closed socket when it next reads it; one waiting on a lock would carry on).
      const admin = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 5000 })
      admin.on("error", () => undefined)
      try {
        await admin.connect()
        for (let i = 0; i < 50 && ports.length > 0; i++) {
          const { rows } = await admin.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND client_addr IN ('127.0.0.1', '::1')`,
            [ports]
          )
          if (rows.length === 0) break
          await admin.query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [rows.map((r) => r.pid)])
          await sleep(100)
        }
      } finally {
        await admin.end().catch(() => undefined)
      }
      const cut = Date.now()
      await sleep(downMs - (cut - started))
      const back = Date.now()
      await proxy.up()
      return { downMs: back - started, startMs: Date.now() - back }
    },
    close: async () => {
      await proxy.down()
    }
  }
}
