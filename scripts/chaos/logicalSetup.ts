import pg from "pg"
import { ensureLogicalWal } from "../stack/logicalWal.ts"
import { adminEnv, pgAdminTarget, psql } from "../stack/postgres.ts"
import { sleep } from "./timing.ts"

/**
 * What a logical-capture run needs from PostgreSQL before it starts, and the clean-up after it: the
 * server with wal_level = logical (on this machine's server `ensureLogicalWal` sets it, restarting
 * the cluster once when it must and may), the run's role with REPLICATION, and at the end the run's
 * slot and publication dropped (a slot left behind keeps WAL forever).
 */
const withClient = async <A>(url: string, use: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  client.on("error", () => undefined)
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

const isLocal = (url: string) => ["127.0.0.1", "localhost", "::1", "[::1]"].includes(new URL(url).hostname)

export const prepareLogical = async (pgUrl: string, log: (line: string) => void): Promise<void> => {
  const walLevel = await withClient(pgUrl, async (c) => (await c.query<{ wal_level: string }>("SHOW wal_level")).rows[0]?.wal_level)
  if (walLevel !== "logical") {
    if (!isLocal(pgUrl)) throw new Error(`wal_level is ${walLevel} on ${new URL(pgUrl).hostname}: logical capture needs wal_level = logical (set it and restart PostgreSQL)`)
    log(`wal_level is ${walLevel}: setting wal_level = logical on this machine's PostgreSQL`)
    const wal = await ensureLogicalWal(pgAdminTarget())
    if (!wal.logical) throw new Error(`wal_level is ${wal.walLevel}: ${wal.advice}`)
  }
  const role = decodeURIComponent(new URL(pgUrl).username)
  const replication = await withClient(pgUrl, async (c) =>
    (await c.query<{ ok: boolean }>("SELECT rolreplication OR rolsuper AS ok FROM pg_roles WHERE rolname = current_user")).rows[0]?.ok === true
  )
  if (!replication) {
    if (!isLocal(pgUrl)) throw new Error(`role ${role} lacks REPLICATION: ALTER ROLE "${role}" REPLICATION (as a superuser)`)
    const granted = await psql(["-c", `ALTER ROLE "${role.replaceAll('"', '""')}" REPLICATION`], adminEnv(pgAdminTarget()))
    if (granted.code !== 0) throw new Error(`role ${role} lacks REPLICATION and granting it failed: ${granted.stderr.trim()}`)
    log(`granted REPLICATION to ${role}`)
  }
}

/** The producer's defaults (src/config/PipelineConfig.ts: slotNameOf, publicationNameOf). */
export const slotOf = (table: string) => `${table.toLowerCase().slice(0, 58)}_slot`
export const publicationOf = (table: string) => `${table.slice(0, 59)}_pub`

export const dropCapture = async (pgUrl: string, table: string, log: (line: string) => void): Promise<void> => {
  const slot = slotOf(table)
  await withClient(pgUrl, async (c) => {
    // A walsender can outlive its killed producer for a moment (until it notices the closed socket).
    for (let i = 0; i < 40; i++) {
      await c.query("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", [slot])
        .catch(() => undefined)
      try {
        const { rowCount } = await c.query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [slot])
        if ((rowCount ?? 0) > 0) log(`dropped replication slot ${slot}`)
        break
      } catch (error) {
        if (i === 39) throw error
        await sleep(250)
      }
    }
    await c.query(`DROP PUBLICATION IF EXISTS "${publicationOf(table).replaceAll('"', '""')}"`)
  })
}

/**
 * Orders in the table before the producer first starts (logical capture reads them from the slot's
 * consistent snapshot), created_at spread over the last days (several date partitions). Returns their ids.
 */
export const insertSnapshotRows = async (pool: pg.Pool, table: string, rows: number): Promise<Array<number>> => {
  const { rows: inserted } = await pool.query<{ order_id: number }>(
    `INSERT INTO "${table}" (customer_name, restaurant_name, item, amount, order_status, created_at)
     SELECT 'snapshot ' || g, (ARRAY['Burger Junction', 'Spice Route', 'Café Ünïcode'])[1 + g % 3], 'Masala Dosa',
            ((g * 7919) % 250000) / 100.0, (ARRAY['PLACED', 'PREPARING', 'DELIVERED', 'CANCELLED'])[1 + g % 4],
            (now() AT TIME ZONE 'utc') - make_interval(mins => g * 7)
     FROM generate_series(1, $1::int) AS g
     RETURNING order_id`,
    [rows]
  )
  return inserted.map((r) => r.order_id)
}
