import type pg from "pg"
import { sleep, throwIfAborted } from "./timing.ts"

/**
 * What the run's own SQL clients (the generator, the lifecycles) do when PostgreSQL goes away under
 * them (a restart, a cut connection): tell such an error from a real one, wait for the server, and
 * settle a transaction whose COMMIT was sent but never answered by reading the database afterwards.
 */

/** SQLSTATEs of a server going away or not there yet (admin shutdown, crash shutdown, cannot connect now, connection failures). */
const transientCodes = new Set(["57P01", "57P02", "57P03", "08000", "08001", "08003", "08004", "08006", "ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTCONN"])
const transientText = /Connection terminated|connection error|not queryable|shutting down|starting up|in recovery|ECONNREFUSED|ECONNRESET|EPIPE|socket|timeout expired|terminating connection/i

export const isTransientPg = (error: unknown): boolean => {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  return (typeof code === "string" && transientCodes.has(code)) || transientText.test(error.message)
}

/** Retries `read` (a query that only reads) through an outage until it answers; the run's cancellation stops it. */
export const readThroughOutage = async <A>(read: () => Promise<A>, abort: AbortSignal, timeoutMs = 120_000): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    throwIfAborted(abort)
    try {
      return await read()
    } catch (error) {
      if (!isTransientPg(error) || Date.now() > deadline) throw error
      await sleep(250, abort)
    }
  }
}

/** Counts of what outages did to the run's own transactions. */
export interface OutageStats {
  /** Transactions cut before their COMMIT was sent: rolled back by the server, their work redone or dropped. */
  interrupted: number
  /** COMMITs sent without an answer, settled afterwards by reading the rows. */
  unknownCommits: number
  /** Of those, how many had committed. */
  unknownCommitted: number
}

export const newOutageStats = (): OutageStats => ({ interrupted: 0, unknownCommits: 0, unknownCommitted: 0 })

const guarded = new WeakSet<pg.PoolClient>()

/**
 * A client from the pool that may lose its connection while checked out (between statements of an
 * open transaction): without a listener its 'error' event would end the run. The next query on it
 * fails instead, which is what the callers handle.
 */
export const connect = async (pool: pg.Pool): Promise<pg.PoolClient> => {
  const client = await pool.connect()
  if (!guarded.has(client)) {
    guarded.add(client)
    client.on("error", () => undefined)
  }
  return client
}

export type TransactionOutcome<A> =
  | { readonly status: "committed"; readonly value: A; readonly uncertain: boolean }
  | { readonly status: "rolled-back"; readonly value: A | undefined; readonly interrupted: boolean }

/**
 * BEGIN, `body`, COMMIT (or ROLLBACK when `body` says so). A transient error before COMMIT was sent
 * means the server rolled the transaction back (it never commits one whose client is gone); after
 * it, the outcome is unknown and `committed(value)` decides it once the server answers again (it
 * reads the rows the transaction wrote, or asks pg_xact_status). Other errors are thrown.
 */
export const runTransaction = async <A>(
  pool: pg.Pool,
  body: (client: pg.PoolClient) => Promise<{ value: A; rollback: boolean }>,
  committed: (value: A) => Promise<boolean>,
  stats: OutageStats,
  abort: AbortSignal
): Promise<TransactionOutcome<A>> => {
  let value: A | undefined
  let commitSent = false
  let client: pg.PoolClient | undefined
  try {
    client = await connect(pool)
    await client.query("BEGIN")
    const outcome = await body(client)
    value = outcome.value
    if (outcome.rollback) {
      await client.query("ROLLBACK")
      client.release()
      return { status: "rolled-back", value, interrupted: false }
    }
    commitSent = true
    await client.query("COMMIT")
    client.release()
    return { status: "committed", value, uncertain: false }
  } catch (error) {
    client?.release(error instanceof Error ? error : new Error(String(error)))
    if (!isTransientPg(error)) throw error
    if (!commitSent || value === undefined) {
      stats.interrupted += 1
      await sleep(200, abort)
      return { status: "rolled-back", value, interrupted: true }
    }
    stats.unknownCommits += 1
    const known = value
    const didCommit = await readThroughOutage(() => committed(known), abort)
    if (didCommit) {
      stats.unknownCommitted += 1
      return { status: "committed", value: known, uncertain: true }
    }
    return { status: "rolled-back", value: known, interrupted: true }
  }
}

/** Whether transaction `xid` (from pg_current_xact_id()) committed; waits while the server still runs it. */
export const xactCommitted = async (pool: pg.Pool, xid: string, abort: AbortSignal): Promise<boolean> => {
  for (;;) {
    const { rows: [row] } = await pool.query<{ status: string | null }>("SELECT pg_xact_status($1::xid8) AS status", [xid])
    if (row?.status !== "in progress") return row?.status === "committed"
    await sleep(100, abort)
    throwIfAborted(abort)
  }
}
