import type pg from "pg"
import { newOutageStats, type OutageStats, runTransaction } from "./pgOutage.ts"
import type { Random } from "./random.ts"
import { sleep, throwIfAborted } from "./timing.ts"

/**
 * The order generator: what a busy restaurant platform does to the source table while the pipeline
 * is being killed. Every row honours the one rule the producer's capture relies on (see
 * src/layers/postgres/captureQuery.ts): a row's created_at is never older than the start of the
 * transaction that inserts it. The default (now() AT TIME ZONE 'utc') is exactly that start, and the
 * explicit ties below use the same expression inside their transaction. A writer that set an older
 * created_at by hand could commit it below the capture horizon, and no horizon could catch it.
 */
export interface GeneratorOptions {
  readonly table: string
  /** Target steady rate, orders per second, across all steady workers. */
  readonly ordersPerSecond: number
  readonly steadyWorkers: number
  /** Workers that hold transactions open for 1-5 s before committing (or rolling back). */
  readonly lateWorkers: number
  /** Probability that a late transaction rolls back instead of committing. */
  readonly lateRollbackChance: number
  /** Probability that a steady transaction rolls back. */
  readonly steadyRollbackChance: number
  /** Rows per tie group (all with one created_at), min and max. */
  readonly tieGroupRows: readonly [number, number]
  /**
   * Every order inserted as PLACED (logical capture: their lifecycles start there, so each step
   * changes the status, and a step whose COMMIT went unanswered can be settled by reading it).
   * Otherwise a random status.
   */
  readonly placed?: boolean
  /**
   * Called with the orders of each committed transaction (also one whose COMMIT went unanswered and
   * was found committed afterwards), amounts in cents: the logical run's lifecycles and change count.
   */
  readonly onCommitted?: (orders: ReadonlyArray<{ readonly orderId: number; readonly amount: number }>) => void
}

export interface GeneratorStats {
  transactions: number
  /** Rows the generator believes it committed; the report counts from the database instead. */
  committedRows: number
  rolledBackTransactions: number
  rolledBackRows: number
  /** order_ids a rolled-back INSERT took: they must appear nowhere. */
  rolledBackIds: Array<number>
  lateCommits: number
  lateRows: number
  tieGroups: number
  tieRows: number
  /** What PostgreSQL outages did to the generator's transactions (all zero without one). */
  outage: OutageStats
}

const restaurants = ["Burger Junction", "Spice Route", "Pizza Palace", "Sushi Corner", "Dosa Darbar", "Café Ünïcode"]
const items = ["Veg Burger", "Paneer Butter Masala", "Margherita Pizza", "Salmon Nigiri Set", "Masala Dosa", "Crème brûlée"]
const statuses = ["PLACED", "PREPARING", "DELIVERED", "CANCELLED"]

interface Row {
  customer: string
  restaurant: string
  item: string
  amount: string
  status: string
}

const makeRow = (rng: Random, label: string, placed = false): Row => {
  const row = {
    customer: label,
    restaurant: rng.pick(restaurants),
    item: rng.pick(items),
    // Every cent pattern, never negative (a negative amount would be cleaned out of the lake on purpose).
    amount: (rng.int(0, 250_000) / 100).toFixed(2),
    status: rng.pick(statuses)
  }
  return placed ? { ...row, status: "PLACED" } : row
}

/**
 * One multi-row INSERT. `tie`: created_at set explicitly to the transaction's start, the same value
 * for every row of the transaction; otherwise the column default (also the transaction's start).
 */
const insertRows = async (client: pg.PoolClient, table: string, rows: ReadonlyArray<Row>, tie: boolean, into: Array<{ orderId: number; amount: number }>) => {
  const params: Array<string> = []
  const tuples = rows.map((row) => {
    const base = params.length
    params.push(row.customer, row.restaurant, row.item, row.amount, row.status)
    const values = [1, 2, 3, 4, 5].map((i) => `$${base + i}`)
    if (tie) values.push("(now() AT TIME ZONE 'utc')")
    return `(${values.join(", ")})`
  })
  const columns = `customer_name, restaurant_name, item, amount, order_status${tie ? ", created_at" : ""}`
  const result = await client.query<{ order_id: number }>(
    `INSERT INTO "${table}" (${columns}) VALUES ${tuples.join(", ")} RETURNING order_id`,
    params
  )
  result.rows.forEach((r, i) => into.push({ orderId: r.order_id, amount: toCents(rows[i]!.amount) }))
  return result.rows.map((r) => r.order_id)
}

const toCents = (amount: string) => Math.round(Number(amount) * 100)

/**
 * Inserts until `stop` fires, then lets every open transaction finish (the longest holds 5 s more).
 * `abort` cuts everything short: open transactions are rolled back by dropping their connections.
 */
export const runGenerator = async (
  pool: pg.Pool,
  options: GeneratorOptions,
  rng: Random,
  stopSignal: AbortSignal,
  abort: AbortSignal
): Promise<GeneratorStats> => {
  // A failing worker stops the others at their next step, so the error surfaces at once.
  const failed = new AbortController()
  const stop = AbortSignal.any([stopSignal, failed.signal])
  const stats: GeneratorStats = {
    transactions: 0,
    committedRows: 0,
    rolledBackTransactions: 0,
    rolledBackRows: 0,
    rolledBackIds: [],
    lateCommits: 0,
    lateRows: 0,
    tieGroups: 0,
    tieRows: 0,
    outage: newOutageStats()
  }
  const settle = (ids: ReadonlyArray<number>, rollback: boolean) => {
    stats.transactions += 1
    if (rollback) {
      stats.rolledBackTransactions += 1
      stats.rolledBackRows += ids.length
      stats.rolledBackIds.push(...ids)
    } else {
      stats.committedRows += ids.length
    }
  }
  /**
   * One transaction of inserts: `body` inserts (pushing each statement's rows onto `rows`) and says
   * whether to roll back. Cut by an outage before its COMMIT, it counts as rolled back (the server
   * rolled it back); with its COMMIT unanswered, its rows are looked for once the server is back.
   * Returns the committed rows (none when rolled back).
   */
  const inTransaction = async (body: (client: pg.PoolClient, rows: Array<{ orderId: number; amount: number }>) => Promise<{ rollback: boolean }>) => {
    const rows: Array<{ orderId: number; amount: number }> = []
    const outcome = await runTransaction(
      pool,
      async (client) => ({ value: rows, rollback: (await body(client, rows)).rollback }),
      async (written) => {
        const { rows: [found] } = await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${options.table}" WHERE order_id = ANY($1::int[])`,
          [written.map((r) => r.orderId)]
        )
        return (found?.n ?? 0) > 0
      },
      stats.outage,
      abort
    )
    const ids = rows.map((r) => r.orderId)
    // A transaction cut before it wrote anything is no transaction at all.
    if (!(outcome.status === "rolled-back" && outcome.interrupted && ids.length === 0)) settle(ids, outcome.status !== "committed")
    if (outcome.status === "committed") options.onCommitted?.(rows)
    return outcome.status === "committed" ? rows : []
  }
  /** Waits inside an open transaction: only a cancelled run cuts it short (and rolls back). */
  const holdOpen = async (ms: number) => {
    await sleep(ms, abort)
    throwIfAborted(abort)
  }

  // Small transactions at a steady pace, most of them one order (as an ordering app commits them:
  // many short transactions from several sessions, the interleaving a capture must get right), some
  // of 2-5; now and then one rolls back.
  const steady = async (worker: number) => {
    const random = rng.fork(`steady-${worker}`)
    const perWorker = options.ordersPerSecond / options.steadyWorkers
    let n = 0
    while (!stop.aborted) {
      const started = Date.now()
      const count = random.chance(0.6) ? 1 : random.int(2, 5)
      const rollback = random.chance(options.steadyRollbackChance)
      await inTransaction(async (client, written) => {
        const rows = Array.from({ length: count }, () => makeRow(random, `steady ${worker}.${++n}`, options.placed))
        await insertRows(client, options.table, rows, false, written)
        // Two statements now and then: the transaction's rows still share its start time.
        if (random.chance(0.2)) await insertRows(client, options.table, [makeRow(random, `steady ${worker}.${++n}`, options.placed)], false, written)
        // An application's think time before COMMIT (a payment call, a second query): concurrent
        // transactions overlap and commit out of their start order, even at a moderate rate.
        await holdOpen(random.int(0, 15))
        return { rollback }
      })
      await sleep((count / perWorker) * 1000 - (Date.now() - started), stop)
    }
  }

  // Long transactions: open, insert (sometimes only after a while), hold 1-5 s, then commit late.
  // Meanwhile the steady workers commit newer rows: `created_at > last` polling would skip these.
  // They come every few seconds, not back to back: an open long transaction holds the capture
  // horizon seconds back, which hides races near the horizon, so the run needs stretches without one.
  const late = async (worker: number) => {
    const random = rng.fork(`late-${worker}`)
    let n = 0
    while (!stop.aborted) {
      if (!(await sleep(random.int(2000, 9000), stop))) break
      const rollback = random.chance(options.lateRollbackChance)
      const waitBefore = random.chance(0.5) ? random.int(200, 2000) : 0
      const holdMs = random.int(1000, 5000)
      const committed = await inTransaction(async (client, written) => {
        // xact_start (and so created_at) is fixed by the first statement, not by the INSERT.
        await client.query("SELECT 1")
        if (waitBefore > 0) await holdOpen(waitBefore)
        const rows = Array.from({ length: random.int(1, 3) }, () => makeRow(random, `late ${worker}.${++n}`, options.placed))
        await insertRows(client, options.table, rows, false, written)
        await holdOpen(holdMs)
        return { rollback }
      })
      if (committed.length > 0) {
        stats.lateCommits += 1
        stats.lateRows += committed.length
      }
    }
  }

  // Groups of rows with one identical created_at, larger than a producer batch, so a tie straddles
  // the batch boundary (and a producer kill between two batches of it).
  const ties = async () => {
    const random = rng.fork("ties")
    let n = 0
    while (!stop.aborted) {
      if (!(await sleep(random.int(500, 2500), stop))) break
      const [min, max] = options.tieGroupRows
      const total = random.int(min, max)
      const statements = random.int(1, 3)
      const committed = await inTransaction(async (client, written) => {
        for (let s = 0; s < statements; s++) {
          const size = s === statements - 1 ? total - written.length : Math.floor(total / statements)
          const rows = Array.from({ length: size }, () => makeRow(random, `tie ${n + 1}`, options.placed))
          await insertRows(client, options.table, rows, true, written)
          if (s < statements - 1) await holdOpen(random.int(0, 300))
        }
        return { rollback: false }
      })
      n += 1
      if (committed.length > 0) {
        stats.tieGroups += 1
        stats.tieRows += committed.length
      }
    }
  }

  const workers = [
    ...Array.from({ length: options.steadyWorkers }, (_, i) => steady(i + 1)),
    ...Array.from({ length: options.lateWorkers }, (_, i) => late(i + 1)),
    ties()
  ]
  const results = await Promise.allSettled(workers.map((w) => w.catch((error: unknown) => {
    failed.abort()
    throw error
  })))
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected")
  if (failure !== undefined) throw failure.reason
  throwIfAborted(abort)
  return stats
}
