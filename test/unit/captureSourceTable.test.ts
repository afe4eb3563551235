import { describe, expect, it } from "@effect/vitest"
import { missingColumns } from "../../src/layers/postgres/logical/pgoutputDecoding.ts"
import { describeIdentity, planReplicaIdentity, type StoredTable } from "../../src/layers/postgres/logical/replicaIdentity.ts"

const stored = (overrides: Partial<StoredTable> = {}): StoredTable => ({
  sql: "public.orders",
  identity: "d",
  keyColumns: ["order_id"],
  owned: true,
  ...overrides
})

describe("replica identity of the captured table", () => {
  it("accepts FULL as it is", () => {
    expect(planReplicaIdentity("orders", [stored({ identity: "f", owned: false })])).toEqual({ ok: true, setFull: [] })
  })

  it("sets FULL on every owned table that is not, whatever its keys (a primary key does not carry unchanged out-of-line values)", () => {
    const tables = [
      stored(),
      stored({ sql: "public.p1", keyColumns: null }),
      stored({ sql: "public.p2", identity: "n", keyColumns: null }),
      stored({ sql: "public.p3", identity: "i", keyColumns: ["customer_name"] }),
      stored({ sql: "public.p4", identity: "f" })
    ]
    const plan = planReplicaIdentity("orders", tables)
    expect(plan.ok && plan.setFull.map((t) => t.sql)).toEqual(["public.orders", "public.p1", "public.p2", "public.p3"])
  })

  it("refuses when a table not owned is not FULL, naming what is wrong and the ALTER for each", () => {
    const plan = planReplicaIdentity("orders", [
      stored({ sql: "public.orders_2025", keyColumns: null, owned: false }),
      stored({ sql: "public.orders_2026", identity: "f", owned: false })
    ])
    expect(plan.ok).toBe(false)
    const problem = plan.ok ? "" : plan.problem
    expect(problem).toContain("public.orders_2025 has REPLICA IDENTITY DEFAULT and no primary key")
    expect(problem).toContain("cannot update table")
    expect(problem).toContain("ALTER TABLE public.orders_2025 REPLICA IDENTITY FULL;")
    expect(problem).not.toContain("orders_2026")
  })

  it("says when a key does not include order_id", () => {
    expect(describeIdentity(stored({ identity: "i", keyColumns: ["customer_name"] }))).toBe(
      "public.orders has REPLICA IDENTITY USING INDEX (customer_name), which does not include order_id"
    )
    expect(describeIdentity(stored({ keyColumns: ["tenant", "order_id"] }))).toBe(
      "public.orders has REPLICA IDENTITY DEFAULT, its primary key (tenant, order_id)"
    )
    expect(describeIdentity(stored({ identity: "n", keyColumns: null }))).toContain("REPLICA IDENTITY NOTHING")
  })
})

describe("rows that arrive incomplete", () => {
  const row = { order_id: "1", customer_name: "a", restaurant_name: "r", item: "i", amount: "1.00", order_status: "PLACED", created_at: null }

  it("names the contract columns that did not arrive; NULL is a value", () => {
    expect(missingColumns(row)).toEqual([])
    expect(missingColumns({ ...row, customer_name: undefined, item: undefined })).toEqual(["customer_name", "item"])
    // A column beyond the contract is not ours to miss.
    expect(missingColumns({ ...row, notes: undefined })).toEqual([])
  })
})
