import { randomBytes } from "node:crypto"
import type pg from "pg"
import { formatCents } from "../../src/domain/Amount.ts"
import { type LifecycleAction, type LifecycleSettings, planLifecycle } from "../../src/generator/lifecycle.ts"
import { LifecycleQueue, type TakenStep } from "../../src/generator/lifecycleQueue.ts"
import type { ChangeLedger } from "./changeLedger.ts"
import { isTransientPg, type OutageStats, readThroughOutage, runTransaction, xactCommitted } from "./pgOutage.ts"
import type { Random } from "./random.ts"
import { sleep, throwIfAborted } from "./timing.ts"

/**
 * The logical run's workload beside the inserts: order lifecycles (the generator's planner and
 * queue, src/generator/lifecycle*.ts, run on the run's own pg pool, so a step whose COMMIT went
 * unanswered can be settled by reading its row), multi-statement transactions (an order inserted,
 * updated and deleted in one transaction, beside one inserted and updated) and one large UPDATE.
 * Every committed change goes into the ledger.
 */
export interface LifecycleStats {
  tracked: number
  statusUpdates: number
  amountUpdates: number
  deletes: number
  /** Steps run again because an outage cut them before they committed. */
  retriedSteps: number
  /** Steps whose statement went unanswered and were found committed by reading the row. */
  settledByReading: number
  multiTransactions: number
  multiRolledBack: number
  bulkTransactions: number
  bulkRows: number
}

export const newLifecycleStats = (): LifecycleStats => ({
  tracked: 0,
  statusUpdates: 0,
  amountUpdates: 0,
  deletes: 0,
  retriedSteps: 0,
  settledByReading: 0,
  multiTransactions: 0,
  multiRolledBack: 0,
  bulkTransactions: 0,
  bulkRows: 0
})

export interface LifecycleWorkload {
  /** Plans and queues freshly committed orders (amounts in cents). */
  readonly track: (orders: ReadonlyArray<{ readonly orderId: number; readonly amount: number }>) => void
  /** Runs until `stop` fires and every lifecycle in flight has ended (or `abort`). */
  readonly run: () => Promise<void>
  readonly stats: LifecycleStats
}

export interface LifecycleWorkloadOptions {
  readonly table: string
  readonly settings: LifecycleSettings
  readonly seed: number
  /** Share of inserted orders that get a lifecycle (the rest stay PLACED). */
  readonly share: number
  readonly concurrency: number
}

export const lifecycleWorkload = (
  pool: pg.Pool,
  options: LifecycleWorkloadOptions,
  ledger: ChangeLedger,
  random: Random,
  stop: AbortSignal,
  abort: AbortSignal
): LifecycleWorkload => {
  const table = `"${options.table}"`
  const queue = new LifecycleQueue(1_000_000)
  const stats = newLifecycleStats()

  const track = (orders: ReadonlyArray<{ readonly orderId: number; readonly amount: number }>) => {
    const now = Date.now()
    for (const order of orders) {
      if (!random.chance(options.share)) continue
      if (queue.track(order.orderId, planLifecycle(options.settings, options.seed, { ...order, insertedAt: now }))) stats.tracked += 1
    }
  }

  const statementOf = (orderId: number, action: LifecycleAction): [string, Array<unknown>] => {
    switch (action.kind) {
      case "status":
        return [`UPDATE ${table} SET order_status = $2 WHERE order_id = $1`, [orderId, action.status]]
      case "amount":
        return [`UPDATE ${table} SET amount = $2::numeric WHERE order_id = $1`, [orderId, formatCents(action.amount)]]
      case "delete":
        return [`DELETE FROM ${table} WHERE order_id = $1`, [orderId]]
    }
  }

  /**
   * Whether the step's change is in the table: the status or amount it sets (never the one before:
   * orders are inserted PLACED, a lifecycle only moves forward, a correction always changes the
   * amount), or the row gone. (With a random first status, a PREPARING step on an order inserted
   * PREPARING would read as done without having run: the run's first full run counted one change
   * too many that way.)
   * Only this order's own lifecycle touches its status and amount, and its next step waits for this one.
   */
  const stepCommitted = async (orderId: number, action: LifecycleAction): Promise<boolean> => {
    const { rows: [row] } = await pool.query<{ order_status: string; amount: string }>(
      `SELECT order_status, amount::text AS amount FROM ${table} WHERE order_id = $1`,
      [orderId]
    )
    if (action.kind === "delete") return row === undefined
    if (row === undefined) return false
    return action.kind === "status" ? row.order_status === action.status : row.amount === formatCents(action.amount)
  }

  /** One step as its own statement (autocommit), retried through outages; true when it changed its row. */
  const runStep = async (taken: TakenStep): Promise<boolean> => {
    const [text, values] = statementOf(taken.orderId, taken.step.action)
    for (;;) {
      throwIfAborted(abort)
      try {
        const result = await pool.query(text, values)
        return (result.rowCount ?? 0) > 0
      } catch (error) {
        if (!isTransientPg(error)) throw error
        // Sent or not, answered or not: the row says whether it committed.
        const done = await readThroughOutage(() => stepCommitted(taken.orderId, taken.step.action), abort)
        if (done) {
          stats.settledByReading += 1
          return true
        }
        stats.retriedSteps += 1
        await sleep(200, abort)
      }
    }
  }

  const apply = async (taken: TakenStep) => {
    const changed = await runStep(taken)
    if (!changed) {
      queue.drop(taken) // not expected: only its own lifecycle deletes an order
      return
    }
    const action = taken.step.action
    ledger.record(taken.orderId, action.kind === "delete" ? "delete" : "update")
    if (action.kind === "status") stats.statusUpdates += 1
    else if (action.kind === "amount") stats.amountUpdates += 1
    else stats.deletes += 1
    queue.advance(taken)
  }

  const run = async () => {
    // Steps of one order run one after the other (the queue hands out an order's next step only
    // after `advance`); different orders' steps run side by side.
    while (!abort.aborted && !(stop.aborted && queue.size === 0)) {
      const due = queue.takeDue(Date.now(), options.concurrency * 16)
      if (due.length === 0) {
        const next = queue.nextDueAt()
        await sleep(next === undefined ? 100 : Math.min(100, Math.max(1, next - Date.now())), abort)
        continue
      }
      let index = 0
      await Promise.all(Array.from({ length: options.concurrency }, async () => {
        while (index < due.length) await apply(due[index++]!)
      }))
    }
    throwIfAborted(abort)
  }

  return { track, run, stats }
}

const makeOrderSql = (table: string) =>
  `INSERT INTO "${table}" (customer_name, restaurant_name, item, amount, order_status)
   VALUES ($1, 'Spice Route', 'Masala Dosa', $2::numeric, 'PLACED') RETURNING order_id, pg_current_xact_id()::text AS xid`

/**
 * Every 0.5-2 s one transaction of several statements: order A inserted, updated (status and
 * amount) and deleted; order B inserted and updated. Its changes share one commit and must come
 * out in statement order. Now and then one rolls back. Cut by an outage with its COMMIT
 * unanswered, pg_xact_status says whether it committed (order A leaves no row to read).
 */
export const multiStatementTransactions = async (
  pool: pg.Pool,
  table: string,
  ledger: ChangeLedger,
  stats: LifecycleStats,
  outage: OutageStats,
  random: Random,
  stop: AbortSignal,
  abort: AbortSignal,
  /**
   * Changes of another captured table to make in every other such transaction (the restaurants):
   * they share its commit; `settle` says whether it committed.
   */
  alongside?: () => { readonly run: (client: pg.PoolClient) => Promise<void>; readonly settle: (committed: boolean) => void }
): Promise<void> => {
  let n = 0
  while (!stop.aborted) {
    if (!(await sleep(random.int(500, 2000), stop))) break
    n += 1
    const rollback = random.chance(0.1)
    const other = alongside !== undefined && n % 2 === 0 ? alongside() : undefined
    const outcome = await runTransaction(pool, async (client) => {
      const { rows: [a] } = await client.query<{ order_id: number; xid: string }>(makeOrderSql(table), [`multi ${n}a`, "12.50"])
      await client.query(`UPDATE "${table}" SET order_status = 'PREPARING', amount = 13.75 WHERE order_id = $1`, [a!.order_id])
      await client.query(`DELETE FROM "${table}" WHERE order_id = $1`, [a!.order_id])
      // Every 4th B has a name over 4 kB, stored out of line (TOAST): its status update here, and a
      // relabelling by bulkUpdate later, arrive with the name unchanged, which only the old row carries.
      // Random bytes outside the seeded plan: pglz cannot shrink them, and a replay's plan stays the same.
      const name = n % 4 === 0 ? `multi ${randomBytes(2_200).toString("hex")} ${n}b` : `multi ${n}b`
      const { rows: [b] } = await client.query<{ order_id: number }>(makeOrderSql(table), [name, "20.00"])
      await client.query(`UPDATE "${table}" SET order_status = 'DELIVERED' WHERE order_id = $1`, [b!.order_id])
      await other?.run(client)
      return { value: { a: a!.order_id, b: b!.order_id, xid: a!.xid }, rollback }
    }, (value) => xactCommitted(pool, value.xid, abort), outage, abort)
      .catch((error: unknown) => {
        other?.settle(false)
        throw error
      })
    other?.settle(outcome.status === "committed")
    if (outcome.status !== "committed") {
      stats.multiRolledBack += 1
      continue
    }
    stats.multiTransactions += 1
    const { a, b } = outcome.value
    ledger.record(a, "insert")
    ledger.record(a, "update")
    ledger.record(a, "delete")
    ledger.record(b, "insert")
    ledger.record(b, "update")
  }
}

/**
 * One large transaction at `atMs` into the window: `rows` orders (picked at random among those in
 * the table) relabelled at once, a column the lifecycles leave alone; retried when an outage cuts
 * it before its COMMIT.
 */
export const bulkUpdate = async (
  pool: pg.Pool,
  table: string,
  rows: number,
  ledger: ChangeLedger,
  stats: LifecycleStats,
  outage: OutageStats,
  waitUntil: () => Promise<boolean>,
  log: (line: string) => void,
  abort: AbortSignal
): Promise<void> => {
  if (rows <= 0 || !(await waitUntil())) return
  for (let attempt = 1; attempt <= 5; attempt++) {
    const started = Date.now()
    const outcome = await runTransaction(pool, async (client) => {
      const { rows: [x] } = await client.query<{ xid: string }>("SELECT pg_current_xact_id()::text AS xid")
      const result = await client.query<{ order_id: number }>(
        `UPDATE "${table}" SET restaurant_name = $1
         WHERE order_id IN (SELECT order_id FROM "${table}" ORDER BY random() LIMIT $2) RETURNING order_id`,
        [`Relabelled Kitchen ${attempt}`, rows]
      )
      return { value: { xid: x!.xid, ids: result.rows.map((r) => r.order_id) }, rollback: false }
    }, (value) => xactCommitted(pool, value.xid, abort), outage, abort)
    if (outcome.status === "committed") {
      for (const id of outcome.value.ids) ledger.record(id, "update")
      stats.bulkTransactions += 1
      stats.bulkRows += outcome.value.ids.length
      log(`large transaction: ${outcome.value.ids.length} orders updated at once in ${Date.now() - started} ms${outcome.uncertain ? " (its COMMIT went unanswered; found committed)" : ""}`)
      return
    }
    log(`large transaction cut by an outage (attempt ${attempt}); again`)
    await sleep(1000, abort)
  }
}
