import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, TestClock } from "effect"
import { SqlIdentifier } from "../../src/config/Identifiers.ts"
import {
  defaultLifecycleSettings,
  finalStateOf,
  type LifecycleSettings,
  type LifecycleStep,
  planLifecycle,
  statusRank
} from "../../src/generator/lifecycle.ts"
import { makeLifecycleDriver } from "../../src/generator/lifecycleDriver.ts"
import { LifecycleQueue } from "../../src/generator/lifecycleQueue.ts"

const settings: LifecycleSettings = { lifecycleSeconds: 60, cancelRate: 0.1, updatesPerOrder: 0.2, deleteRate: 0.05 }
const t0 = Date.UTC(2025, 0, 15, 12)
const planMany = (s: LifecycleSettings, seed: number, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const order = { orderId: 1000 + i, amount: 22000 + i, insertedAt: t0 + i * 10 }
    return { order, steps: planLifecycle(s, seed, order) }
  })

describe("planLifecycle", () => {
  const plans = planMany(settings, 42, 5000)

  it("moves statuses forward only: PREPARING, then exactly one of DELIVERED or CANCELLED", () => {
    for (const { steps } of plans) {
      const statuses = steps.flatMap((s) => (s.action.kind === "status" ? [s.action.status] : []))
      expect(statuses).toHaveLength(2)
      expect(statuses[0]).toBe("PREPARING")
      expect(["DELIVERED", "CANCELLED"]).toContain(statuses[1])
      let rank = statusRank.PLACED
      for (const status of statuses) {
        expect(statusRank[status]).toBeGreaterThan(rank)
        rank = statusRank[status]
      }
    }
  })

  it("puts steps strictly in time after the insert, a delete last, and nothing after the final status but a delete", () => {
    for (const { order, steps } of plans) {
      let last = order.insertedAt
      for (const step of steps) {
        expect(step.at).toBeGreaterThan(last)
        expect(Number.isInteger(step.at)).toBe(true)
        last = step.at
      }
      const deletes = steps.filter((s) => s.action.kind === "delete")
      expect(deletes.length).toBeLessThanOrEqual(1)
      if (deletes.length === 1) expect(steps.at(-1)!.action.kind).toBe("delete")
      const finalIndex = steps.findIndex((s) => s.action.kind === "status" && s.action.status !== "PREPARING")
      expect(steps.slice(finalIndex + 1).every((s) => s.action.kind === "delete")).toBe(true)
      // Final status within the time scale (plus the whole-millisecond rounding of each step).
      expect(steps[finalIndex]!.at - order.insertedAt).toBeLessThanOrEqual(settings.lifecycleSeconds * 1000 + steps.length)
    }
  })

  it("corrects amounts to other positive amounts in multiples of 5 cents", () => {
    for (const { order, steps } of plans) {
      let amount = order.amount
      for (const step of steps) {
        if (step.action.kind !== "amount") continue
        expect(step.action.amount).not.toBe(amount)
        expect(step.action.amount).toBeGreaterThan(0)
        expect(Number.isInteger(step.action.amount)).toBe(true)
        amount = step.action.amount
      }
    }
  })

  it("is deterministic per seed and order, and differs across seeds", () => {
    const again = planMany(settings, 42, 5000)
    expect(again).toEqual(plans)
    // The same order planned alone (not after others) gets the same steps.
    expect(planLifecycle(settings, 42, plans[1234]!.order)).toEqual(plans[1234]!.steps)
    const other = planMany(settings, 43, 5000)
    expect(other.map((p) => p.steps)).not.toEqual(plans.map((p) => p.steps))
  })

  it("keeps the configured proportions roughly", () => {
    const n = plans.length
    const finals = plans.map(({ order, steps }) => finalStateOf(order, steps))
    const cancelled = finals.filter((f) => f.status === "CANCELLED").length / n
    const deleted = finals.filter((f) => f.deleted).length / n
    const corrections = plans.reduce((sum, { steps }) => sum + steps.filter((s) => s.action.kind === "amount").length, 0) / n
    expect(cancelled).toBeGreaterThan(0.08)
    expect(cancelled).toBeLessThan(0.12)
    expect(deleted).toBeGreaterThan(0.035)
    expect(deleted).toBeLessThan(0.065)
    expect(corrections).toBeGreaterThan(0.17)
    expect(corrections).toBeLessThan(0.23)
    expect(finals.every((f) => f.status === "DELIVERED" || f.status === "CANCELLED")).toBe(true)
  })

  it("gives an update-heavy mix: the integer part of updates per order for every order, the fraction as a chance", () => {
    const heavy = planMany({ ...settings, updatesPerOrder: 3.5 }, 7, 2000)
    const counts = heavy.map(({ steps }) => steps.filter((s) => s.action.kind === "amount").length)
    expect(Math.min(...counts)).toBe(3)
    expect(Math.max(...counts)).toBe(4)
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length
    expect(mean).toBeGreaterThan(3.4)
    expect(mean).toBeLessThan(3.6)
  })

  it("scales with lifecycle seconds", () => {
    const fast = planMany({ ...defaultLifecycleSettings, lifecycleSeconds: 0.5 }, 1, 200)
    for (const { order, steps } of fast) expect(steps.at(-1)!.at - order.insertedAt).toBeLessThanOrEqual(600 + steps.length)
  })
})

describe("LifecycleQueue", () => {
  const step = (at: number, kind: "status" | "delete" = "status"): LifecycleStep =>
    ({ at, action: kind === "delete" ? { kind } : { kind, status: "PREPARING" } })

  it("hands out due steps earliest first, one per order at a time, and each order's steps in order", () => {
    const queue = new LifecycleQueue(10)
    queue.track(2, [step(10), step(20), step(30, "delete")])
    queue.track(1, [step(10), step(15)])
    expect(queue.nextDueAt()).toBe(10)
    const first = queue.takeDue(100, 10)
    // Ties broken by order_id; order 2's second step is not out before its first is advanced.
    expect(first.map((t) => [t.orderId, t.step.at])).toEqual([[1, 10], [2, 10]])
    expect(queue.takeDue(100, 10)).toEqual([])
    for (const taken of first) queue.advance(taken)
    const second = queue.takeDue(100, 10)
    expect(second.map((t) => [t.orderId, t.step.at, t.last])).toEqual([[1, 15, true], [2, 20, false]])
    for (const taken of second) queue.advance(taken)
    expect(queue.size).toBe(1)
    expect(queue.takeDue(29, 10)).toEqual([])
    const [third] = queue.takeDue(30, 10)
    expect(third!.last).toBe(true)
    queue.advance(third!)
    expect(queue.size).toBe(0)
    expect(queue.nextDueAt()).toBeUndefined()
  })

  it("refuses orders beyond its capacity, counting taken ones as in flight", () => {
    const queue = new LifecycleQueue(2)
    expect(queue.track(1, [step(1)])).toBe(true)
    expect(queue.track(2, [step(1)])).toBe(true)
    expect(queue.track(3, [step(1)])).toBe(false)
    const [taken] = queue.takeDue(5, 1)
    expect(queue.track(3, [step(1)])).toBe(false)
    queue.drop(taken!)
    expect(queue.track(3, [step(1)])).toBe(true)
  })

  it("orders many random entries by due time", () => {
    const queue = new LifecycleQueue(10_000)
    let x = 12345
    for (let id = 0; id < 5000; id++) {
      x = (x * 1103515245 + 12345) % 2147483648
      queue.track(id, [step(x % 100_000)])
    }
    const out = queue.takeDue(Number.MAX_SAFE_INTEGER, 10_000).map((t) => t.step.at)
    expect(out).toHaveLength(5000)
    expect(out).toEqual([...out].sort((a, b) => a - b))
  })
})

/** A table in memory behind the one method the driver uses, recording each statement it ran. */
const fakeSql = () => {
  const rows = new Map<number, { status: string; amount: string }>()
  const log: Array<{ orderId: number; sql: string }> = []
  const client = {
    unsafe: (sql: string, params: ReadonlyArray<unknown>) =>
      Effect.sync(() => {
        const orderId = params[0] as number
        log.push({ orderId, sql })
        const row = rows.get(orderId)
        if (row === undefined) return []
        if (sql.startsWith("DELETE")) rows.delete(orderId)
        else if (sql.includes("SET order_status")) row.status = params[1] as string
        else row.amount = params[1] as string
        return [{ order_id: orderId }]
      })
  }
  return { rows, log, layer: Layer.succeed(SqlClient.SqlClient, client as unknown as SqlClient.SqlClient) }
}

describe("the lifecycle driver", () => {
  const table = SqlIdentifier.make("orders")
  const cents = (text: string) => Math.round(Number(text) * 100)

  it.effect("runs each order's steps when due, one statement each, ending in the planned final state", () => {
    const db = fakeSql()
    const s = { ...settings, lifecycleSeconds: 10, updatesPerOrder: 1.5, deleteRate: 0.2 }
    return Effect.gen(function*() {
      const driver = yield* makeLifecycleDriver({ table, settings: s, seed: 5, maxInFlight: 1000 })
      const start = yield* TestClock.currentTimeMillis
      const orders = Array.from({ length: 50 }, (_, i) => ({ orderId: i + 1, amount: 10_000 + i * 5 }))
      for (const o of orders) db.rows.set(o.orderId, { status: "PLACED", amount: (o.amount / 100).toFixed(2) })
      yield* driver.track(orders)
      const fiber = yield* Effect.fork(driver.drain)
      yield* TestClock.adjust("13 seconds")
      yield* Fiber.join(fiber)
      const stats = yield* driver.stats
      expect(stats.inFlight).toBe(0)
      expect(stats.tracked).toBe(50)
      for (const order of orders) {
        const steps = planLifecycle(s, 5, { ...order, insertedAt: start })
        const expected = finalStateOf({ ...order, insertedAt: start }, steps)
        const row = db.rows.get(order.orderId)
        expect(row === undefined).toBe(expected.deleted)
        if (row !== undefined) {
          expect(row.status).toBe(expected.status)
          expect(cents(row.amount)).toBe(expected.amount)
        }
        expect(db.log.filter((l) => l.orderId === order.orderId)).toHaveLength(steps.length)
      }
      expect(stats.statusUpdates).toBe(100)
      expect(stats.deletes).toBe(orders.length - db.rows.size)
    }).pipe(Effect.provide(db.layer))
  })

  it.effect("runs nothing before it is due, drops an order whose row is gone, and caps orders in flight", () => {
    const db = fakeSql()
    return Effect.gen(function*() {
      const driver = yield* makeLifecycleDriver({ table, settings, seed: 1, maxInFlight: 2 })
      db.rows.set(1, { status: "PLACED", amount: "1.00" })
      yield* driver.track([{ orderId: 1, amount: 100 }, { orderId: 2, amount: 100 }, { orderId: 3, amount: 100 }])
      expect(yield* driver.runDue).toBe(0)
      yield* TestClock.adjust(`${settings.lifecycleSeconds * 2} seconds`)
      yield* driver.runDue
      const stats = yield* driver.stats
      expect(stats).toMatchObject({ tracked: 2, untracked: 1, missing: 1, inFlight: 0 })
      expect(db.log.filter((l) => l.orderId === 2)).toHaveLength(1)
      expect(db.rows.get(1)?.status ?? "deleted").not.toBe("PLACED")
    }).pipe(Effect.provide(db.layer))
  })
})
