import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { OrderChange } from "../../src/domain/Change.ts"
import { orderToJson } from "../../src/domain/Order.ts"
import type { Micros } from "../../src/domain/Timestamp.ts"
import { changeMessage } from "../../src/layers/kafka/kafkaOrderPublisher.ts"
import { checkRelation, contractColumns, orderIdOf, timestampTextToIso, tupleToOrder } from "../../src/layers/postgres/logical/pgoutputDecoding.ts"
import { PendingChanges } from "../../src/programs/capture/pendingChanges.ts"

const columns = Object.entries(contractColumns).map(([name, oids]) => ({ name, typeOid: oids[0]! }))

const tuple = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  order_id: "42",
  customer_name: "Asha",
  restaurant_name: "Dosa Hut",
  item: "Masala Dosa",
  amount: "220.50",
  order_status: "PLACED",
  created_at: "2025-01-15 12:24:00.123456",
  ...overrides
})

describe("pgoutput rows to orders", () => {
  it("turns the server's text into an order by the poll query's rules", () => {
    const order = Either.getOrThrow(tupleToOrder(tuple()))
    expect(orderToJson(order)).toBe(
      `{"order_id":42,"customer_name":"Asha","restaurant_name":"Dosa Hut","item":"Masala Dosa","amount":220.5,"order_status":"PLACED","created_at":"2025-01-15T12:24:00.123456Z"}`
    )
  })

  it("keeps NULLs, and whole seconds without a fraction", () => {
    const order = Either.getOrThrow(tupleToOrder(tuple({ customer_name: null, amount: null, created_at: "2025-01-15 12:24:00" })))
    expect(order.customer_name).toBeNull()
    expect(order.amount).toBeNull()
    expect(orderToJson(order)).toContain(`"created_at":"2025-01-15T12:24:00Z"`)
  })

  it("refuses a row that is not an order, saying why", () => {
    expect(Either.getLeft(tupleToOrder(tuple({ created_at: null }))).pipe((l) => l._tag === "Some")).toBe(true)
    expect(Either.isLeft(tupleToOrder(tuple({ amount: "abc" })))).toBe(true)
    expect(Either.getLeft(tupleToOrder(tuple({ item: undefined }))).pipe((l) => l._tag === "Some" && l.value.includes("TOAST"))).toBe(true)
    expect(timestampTextToIso("infinity")).toBeUndefined()
    expect(timestampTextToIso("2025-01-15 12:24:00 BC")).toBeUndefined()
  })

  it("reads order_id from a key tuple", () => {
    expect(orderIdOf({ order_id: "7" })).toBe(7)
    expect(orderIdOf({ order_id: undefined })).toBeUndefined()
    expect(orderIdOf(null)).toBeUndefined()
  })
})

describe("relation messages", () => {
  it("accepts the contract's columns and reports added ones", () => {
    expect(checkRelation(columns)).toEqual({ ok: true, extra: [] })
    expect(checkRelation([...columns, { name: "tip", typeOid: 1700 }])).toEqual({ ok: true, extra: ["tip"] })
  })

  it("refuses a dropped or retyped contract column", () => {
    const dropped = checkRelation(columns.filter((c) => c.name !== "amount"))
    expect(dropped.ok).toBe(false)
    expect(!dropped.ok && dropped.problem).toContain("column amount is gone")
    const retyped = checkRelation(columns.map((c) => (c.name === "created_at" ? { ...c, typeOid: 1184 } : c)))
    expect(!retyped.ok && retyped.problem).toContain("column created_at changed type")
  })
})

const change = (pending: PendingChanges, orderId: number): OrderChange => {
  const tx = pending.transaction!
  return { op: "insert", orderId, order: null, key: pending.nextKey(), commitTime: tx.commitTime, xid: tx.xid }
}

describe("acknowledgement bookkeeping", () => {
  const t = 1_700_000_000_000_000n as Micros

  it("numbers a transaction's changes from 0 under its slot's epoch and commit LSN", () => {
    const pending = new PendingChanges(100n, 1_764_950_400_000)
    pending.begin(500n, 9, t)
    const a = change(pending, 1)
    const b = change(pending, 2)
    expect([a.key, b.key]).toEqual([
      { epoch: 1_764_950_400_000, lsn: 500n, phase: 1, seq: 0 },
      { epoch: 1_764_950_400_000, lsn: 500n, phase: 1, seq: 1 }
    ])
  })

  it("confirms a transaction only at its COMMIT's end, never for part of an open one", () => {
    const pending = new PendingChanges(100n, 0)
    pending.begin(500n, 9, t)
    pending.add(change(pending, 1))
    const partial = pending.take()
    expect(partial.changes).toHaveLength(1)
    expect(partial.confirmTo).toBeNull()
    pending.add(change(pending, 2))
    pending.commit(540n)
    const rest = pending.take()
    expect(rest.changes.map((c) => c.key.seq)).toEqual([1])
    expect(rest.confirmTo).toBe(540n)
    pending.confirmedTo(540n)
    expect(pending.acknowledged).toBe(540n)
  })

  it("several committed transactions in one take confirm to the last COMMIT", () => {
    const pending = new PendingChanges(0n, 0)
    for (const [lsn, end] of [[200n, 240n], [300n, 340n]] as const) {
      pending.begin(lsn, 1, t)
      pending.add(change(pending, 1))
      pending.commit(end)
    }
    pending.begin(400n, 2, t)
    pending.add(change(pending, 3))
    const taken = pending.take()
    expect(taken.changes.map((c) => c.key.lsn)).toEqual([200n, 300n, 400n])
    expect(taken.confirmTo).toBe(340n)
  })

  it("confirms a keepalive's position only when nothing is open or pending", () => {
    const pending = new PendingChanges(100n, 0)
    expect(pending.idleConfirmable(150n)).toBe(150n)
    expect(pending.idleConfirmable(90n)).toBeNull()
    pending.begin(500n, 9, t)
    expect(pending.idleConfirmable(600n)).toBeNull()
    pending.add(change(pending, 1))
    pending.commit(540n)
    expect(pending.idleConfirmable(600n)).toBeNull()
    const { confirmTo } = pending.take()
    // Published but not yet confirmed: still not idle.
    expect(pending.idleConfirmable(600n)).toBeNull()
    pending.confirmedTo(confirmTo!)
    expect(pending.idleConfirmable(600n)).toBe(600n)
  })

  it("refuses a BEGIN inside an open transaction", () => {
    const pending = new PendingChanges(0n, 0)
    pending.begin(1n, 1, t)
    expect(() => pending.begin(2n, 2, t)).toThrow(/inside open transaction/)
  })
})

describe("change messages", () => {
  it("carry the contract's headers; a delete is a tombstone", () => {
    const order = Either.getOrThrow(tupleToOrder(tuple()))
    const update = changeMessage(
      { op: "update", orderId: 42, order, key: { epoch: 1_764_950_400_000, lsn: 0xE6BCC38n, phase: 1, seq: 3 }, commitTime: 1_736_943_840_123_456n as Micros, xid: 777 },
      "t_orders",
      "2026-01-01T00:00:00.000Z"
    )
    expect(update).toEqual({
      key: "42",
      value: orderToJson(order),
      headers: {
        op: "update",
        lsn: "0/E6BCC38",
        commit_ts: "2025-01-15T12:24:00.123456Z",
        xid: "777",
        change_key: "1764950400000:000000000E6BCC38:1:3",
        source: "t_orders",
        captured_at: "2026-01-01T00:00:00.000Z"
      }
    })
    // Epoch 0 (a slot from before epochs): the previous release's form, which its consumers still read.
    const snapshot = changeMessage({ op: "snapshot", orderId: 42, order, key: { epoch: 0, lsn: 16n, phase: 0, seq: 42 }, commitTime: null, xid: null }, "t", "x")
    expect(snapshot.headers).toEqual({ op: "snapshot", lsn: "0/10", change_key: "0000000000000010:0:42", source: "t", captured_at: "x" })
    const tombstone = changeMessage({ op: "delete", orderId: 42, order: null, key: { epoch: 5, lsn: 16n, phase: 1, seq: 0 }, commitTime: 0n as Micros, xid: 1 }, "t", "x")
    expect(tombstone.value).toBeNull()
  })
})
