import { maxCents } from "../domain/Amount.ts"
import { seededRandom } from "./generateOrders.ts"

/**
 * The life of a generated order after its INSERT (as PLACED): PREPARING, then DELIVERED or
 * CANCELLED; meanwhile some amount corrections; for a few, a DELETE last. A pure planner: the same
 * seed, order_id, amount and insert time always give the same steps, whatever else ran before, so a
 * load (or a chaos run) can be replayed and its expected end state computed without a database.
 */
export type LifecycleStatus = "PLACED" | "PREPARING" | "DELIVERED" | "CANCELLED"

/** The only transitions a lifecycle makes: forward, never back. */
export const statusRank: Readonly<Record<LifecycleStatus, number>> = { PLACED: 0, PREPARING: 1, DELIVERED: 2, CANCELLED: 2 }

export type LifecycleAction =
  | { readonly kind: "status"; readonly status: Exclude<LifecycleStatus, "PLACED"> }
  /** The order's amount corrected (an UPDATE of amount), in cents. */
  | { readonly kind: "amount"; readonly amount: number }
  | { readonly kind: "delete" }

export interface LifecycleStep {
  /** When the step is due, epoch milliseconds; strictly increasing within an order. */
  readonly at: number
  readonly action: LifecycleAction
}

export interface LifecycleSettings {
  /**
   * Time scale: an order reaches its final status within about this many seconds of its insert
   * (PREPARING at 10–30 % of it, the final status at 50–100 %), and a delete follows within 20 %.
   */
  readonly lifecycleSeconds: number
  /** Share of orders that end CANCELLED rather than DELIVERED. */
  readonly cancelRate: number
  /** Amount corrections per order on average: the integer part for every order, the fraction as a chance of one more. */
  readonly updatesPerOrder: number
  /** Share of orders deleted after their final status. */
  readonly deleteRate: number
}

export const defaultLifecycleSettings: LifecycleSettings = {
  lifecycleSeconds: 180,
  cancelRate: 0.1,
  updatesPerOrder: 0.2,
  deleteRate: 0.03
}

/** Why settings cannot be used, or undefined. */
export const lifecycleSettingsProblem = (settings: LifecycleSettings): string | undefined => {
  if (!(settings.lifecycleSeconds > 0)) return "lifecycle seconds must be > 0"
  if (!(settings.cancelRate >= 0 && settings.cancelRate <= 1)) return "cancel rate must be within 0..1"
  if (!(settings.deleteRate >= 0 && settings.deleteRate <= 1)) return "delete rate must be within 0..1"
  if (!(settings.updatesPerOrder >= 0 && settings.updatesPerOrder <= 100)) return "updates per order must be within 0..100"
  return undefined
}

export interface PlannedOrder {
  readonly orderId: number
  /** Cents, as inserted. */
  readonly amount: number
  /** When its INSERT committed, epoch milliseconds. */
  readonly insertedAt: number
}

/** One independent random stream per (seed, order_id): murmur3's finaliser over both. */
const orderSeed = (seed: number, orderId: number): number => {
  let h = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(orderId >>> 0, 0x85ebca6b)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** A correction of 5–25 % up or down, in multiples of 5 cents; never the same amount, never ≤ 0 or past NUMERIC(10,2). */
const correctedAmount = (amount: number, random: () => number): number => {
  const factor = 1 + (random() < 0.5 ? -1 : 1) * (0.05 + random() * 0.2)
  const next = Math.min(maxCents - 5, Math.max(5, Math.round((amount * factor) / 5) * 5))
  return next === amount ? amount + 5 : next
}

/** The steps of one order, in time order. */
export const planLifecycle = (settings: LifecycleSettings, seed: number, order: PlannedOrder): ReadonlyArray<LifecycleStep> => {
  const random = seededRandom(orderSeed(seed, order.orderId))
  const span = settings.lifecycleSeconds * 1000
  const preparingAt = order.insertedAt + span * (0.1 + random() * 0.2)
  const finalAt = order.insertedAt + span * (0.5 + random() * 0.5)
  const cancelled = random() < settings.cancelRate
  const deleted = random() < settings.deleteRate
  const deleteAt = finalAt + span * (0.05 + random() * 0.15)
  const whole = Math.floor(settings.updatesPerOrder)
  const corrections = whole + (random() < settings.updatesPerOrder - whole ? 1 : 0)

  const steps: Array<{ at: number; action: LifecycleAction }> = [
    { at: preparingAt, action: { kind: "status", status: "PREPARING" } },
    { at: finalAt, action: { kind: "status", status: cancelled ? "CANCELLED" : "DELIVERED" } }
  ]
  // Corrections while the order is live (before its final status), each from the amount before it.
  const correctionTimes = Array.from({ length: corrections }, () => order.insertedAt + (finalAt - order.insertedAt) * random())
    .sort((a, b) => a - b)
  let amount = order.amount
  for (const at of correctionTimes) {
    amount = correctedAmount(amount, random)
    steps.push({ at, action: { kind: "amount", amount } })
  }
  if (deleted) steps.push({ at: deleteAt, action: { kind: "delete" } })

  // Stable sort keeps the planned order for equal times; then whole, strictly increasing milliseconds,
  // so a scheduler never has to break a tie within one order.
  const ordered = steps.map((step, index) => ({ ...step, index })).sort((a, b) => a.at - b.at || a.index - b.index)
  let last = order.insertedAt
  return ordered.map(({ action, at }) => {
    last = Math.max(Math.ceil(at), last + 1)
    return { at: last, action }
  })
}

/** What the order looks like once every step has run: its final status and amount, or deleted. */
export const finalStateOf = (order: PlannedOrder, steps: ReadonlyArray<LifecycleStep>) => {
  let status: LifecycleStatus = "PLACED"
  let amount = order.amount
  let deleted = false
  for (const { action } of steps) {
    if (action.kind === "status") status = action.status
    else if (action.kind === "amount") amount = action.amount
    else deleted = true
  }
  return { status, amount, deleted }
}
