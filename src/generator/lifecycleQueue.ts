import type { LifecycleStep } from "./lifecycle.ts"

/** One order in flight: its planned steps and the index of the next one to run. */
interface Entry {
  readonly orderId: number
  readonly steps: ReadonlyArray<LifecycleStep>
  next: number
}

export interface DueStep {
  readonly orderId: number
  readonly step: LifecycleStep
  /** Whether it is the order's last step. */
  readonly last: boolean
}

/** A step handed out by `takeDue`; give it back with `advance` or `drop`. */
export interface TakenStep extends DueStep {
  readonly entry: Entry
}

const dueAt = (entry: Entry) => entry.steps[entry.next]!.at

/** Earlier due time first; order_id breaks ties, so the order of execution depends only on the plan. */
const before = (a: Entry, b: Entry) => dueAt(a) < dueAt(b) || (dueAt(a) === dueAt(b) && a.orderId < b.orderId)

/**
 * The orders whose lifecycles are still running, as a binary min-heap on each order's next due step:
 * one entry per order (not per step), at most `capacity` of them, so memory stays bounded by the cap
 * whatever the rate and time scale. An order's next step enters the heap only after its previous one
 * has run (`advance`), so steps of one order never run out of order or concurrently.
 */
export class LifecycleQueue {
  private readonly heap: Array<Entry> = []
  /** Orders in the heap plus those taken and not yet advanced. */
  private inFlight = 0

  constructor(readonly capacity: number) {}

  /** Orders whose lifecycle has not finished. */
  get size(): number {
    return this.inFlight
  }

  get full(): boolean {
    return this.inFlight >= this.capacity
  }

  /** Adds an order; false (and nothing added) when the queue is full or the order has no steps. */
  track(orderId: number, steps: ReadonlyArray<LifecycleStep>): boolean {
    if (this.full || steps.length === 0) return false
    this.push({ orderId, steps, next: 0 })
    this.inFlight += 1
    return true
  }

  /** When the earliest step is due, or undefined when nothing is in flight. */
  nextDueAt(): number | undefined {
    const top = this.heap[0]
    return top === undefined ? undefined : dueAt(top)
  }

  /**
   * Takes the orders whose next step is due at `now` (at most `limit`), earliest first. Each comes
   * back through `advance` once its step has run; until then it is out of the heap.
   */
  takeDue(now: number, limit: number): Array<TakenStep> {
    const taken: Array<TakenStep> = []
    while (taken.length < limit && this.heap.length > 0 && dueAt(this.heap[0]!) <= now) {
      const entry = this.pop()!
      taken.push({ orderId: entry.orderId, step: entry.steps[entry.next]!, last: entry.next === entry.steps.length - 1, entry })
    }
    return taken
  }

  /** Puts an order taken by `takeDue` back with its following step, unless that was its last. */
  advance(taken: TakenStep): void {
    const entry = taken.entry
    entry.next += 1
    if (entry.next < entry.steps.length) this.push(entry)
    else this.inFlight -= 1
  }

  /** Forgets an order taken by `takeDue` without running the rest of its steps (its row is gone). */
  drop(_taken: TakenStep): void {
    this.inFlight -= 1
  }

  private push(entry: Entry): void {
    const heap = this.heap
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  private pop(): Entry | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last
      let i = 0
      for (;;) {
        const left = 2 * i + 1
        const right = left + 1
        let smallest = i
        if (left < heap.length && before(heap[left]!, heap[smallest]!)) smallest = left
        if (right < heap.length && before(heap[right]!, heap[smallest]!)) smallest = right
        if (smallest === i) break
        ;[heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!]
        i = smallest
      }
    }
    return top
  }
}
