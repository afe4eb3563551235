import { SqlClient } from "@effect/sql"
import { Clock, Effect, Schedule } from "effect"
import { quoteIdentifier, type SqlIdentifier } from "../config/Identifiers.ts"
import { formatCents } from "../domain/Amount.ts"
import { type LifecycleAction, type LifecycleSettings, planLifecycle } from "./lifecycle.ts"
import { LifecycleQueue, type TakenStep } from "./lifecycleQueue.ts"

export interface LifecycleDriverOptions {
  readonly table: SqlIdentifier
  readonly settings: LifecycleSettings
  readonly seed: number
  /** Orders whose lifecycle runs at once; orders inserted beyond it get none (counted as `untracked`). */
  readonly maxInFlight: number
  /** Steps run side by side (each on its own connection from the client's pool). */
  readonly concurrency?: number
  /** Longest sleep of `run` between looks at the queue, so newly tracked orders are seen soon. */
  readonly idleMillis?: number
}

export interface LifecycleStats {
  readonly tracked: number
  /** Orders inserted while `maxInFlight` lifecycles were running: they keep their first status. */
  readonly untracked: number
  readonly inFlight: number
  readonly statusUpdates: number
  readonly amountUpdates: number
  readonly deletes: number
  /** Steps whose row was gone (deleted by someone else): the rest of that order's life is dropped. */
  readonly missing: number
}

export interface InsertedOrder {
  readonly orderId: number
  /** Cents. */
  readonly amount: number
}

/** A step that failed is retried a few times (a restarting database), then the driver fails. */
const stepRetry = Schedule.exponential("200 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(5)))

/**
 * Runs planned lifecycles against the source table: each step is one statement on its own
 * (`UPDATE … WHERE order_id = $1` or `DELETE`), so its own short transaction, as an ordering front
 * end would make it. Orders are planned when tracked (`planLifecycle`, from the seed and the insert
 * time read from the Clock) and queued in a bounded `LifecycleQueue`.
 */
export const makeLifecycleDriver = Effect.fn("Lifecycle.make")(function*(options: LifecycleDriverOptions) {
  const sql = yield* SqlClient.SqlClient
  const table = quoteIdentifier(options.table)
  const concurrency = options.concurrency ?? 2
  const idleMillis = options.idleMillis ?? 100
  const queue = new LifecycleQueue(options.maxInFlight)
  const counts = { tracked: 0, untracked: 0, statusUpdates: 0, amountUpdates: 0, deletes: 0, missing: 0 }

  const statementOf = (orderId: number, action: LifecycleAction) => {
    switch (action.kind) {
      case "status":
        return sql.unsafe<{ order_id: number }>(
          `UPDATE ${table} SET order_status = $2 WHERE order_id = $1 RETURNING order_id`,
          [orderId, action.status]
        )
      case "amount":
        return sql.unsafe<{ order_id: number }>(
          `UPDATE ${table} SET amount = $2::numeric WHERE order_id = $1 RETURNING order_id`,
          [orderId, formatCents(action.amount)]
        )
      case "delete":
        return sql.unsafe<{ order_id: number }>(`DELETE FROM ${table} WHERE order_id = $1 RETURNING order_id`, [orderId])
    }
  }

  const runStep = (taken: TakenStep) =>
    statementOf(taken.orderId, taken.step.action).pipe(
      Effect.retry(stepRetry),
      Effect.tapError((error) =>
        Effect.logError("lifecycle step failed").pipe(
          Effect.annotateLogs({ order_id: taken.orderId, step: taken.step.action.kind, error: String(error) })
        )
      ),
      Effect.map((rows) => {
        if (rows.length === 0) {
          counts.missing += 1
          queue.drop(taken)
          return
        }
        const action = taken.step.action
        if (action.kind === "status") counts.statusUpdates += 1
        else if (action.kind === "amount") counts.amountUpdates += 1
        else counts.deletes += 1
        queue.advance(taken)
      })
    )

  /** Plans and queues freshly inserted orders; their insert time is now. */
  const track = (orders: ReadonlyArray<InsertedOrder>) =>
    Effect.map(Clock.currentTimeMillis, (now) => {
      for (const order of orders) {
        const steps = planLifecycle(options.settings, options.seed, { ...order, insertedAt: now })
        if (queue.track(order.orderId, steps)) counts.tracked += 1
        else counts.untracked += 1
      }
    })

  /** Runs every step due now, rounds of at most one step per order, until none is due. Returns how many ran. */
  const runDue = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    let ran = 0
    for (;;) {
      const due = queue.takeDue(now, concurrency * 32)
      if (due.length === 0) return ran
      yield* Effect.forEach(due, runStep, { concurrency, discard: true })
      ran += due.length
    }
  })

  const pause = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const next = queue.nextDueAt()
    const wait = next === undefined ? idleMillis : Math.min(idleMillis, Math.max(1, next - now))
    yield* Effect.sleep(`${wait} millis`)
  })

  const stats = Effect.sync((): LifecycleStats => ({ ...counts, inFlight: queue.size }))

  return {
    track,
    runDue,
    stats,
    /** Runs steps as they fall due, forever: fork it beside the inserts. */
    run: Effect.forever(Effect.zipRight(runDue, pause)),
    /** Runs steps as they fall due until no lifecycle is left in flight. */
    drain: Effect.gen(function*() {
      while (queue.size > 0) {
        yield* runDue
        if (queue.size > 0) yield* pause
      }
    })
  }
})

export type LifecycleDriver = Effect.Effect.Success<ReturnType<typeof makeLifecycleDriver>>
