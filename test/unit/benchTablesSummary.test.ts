/**
 * The `tables` benchmark's summary: ratios are taken round by round against orders alone of the
 * same round (never across rounds), then the median; latency ratios against the orders table alone.
 */
import { describe, expect, it } from "vitest"
import { summariseTables, type TablesBackfillRun, type TablesLatencyRun, type TablesSetup } from "../../bench/scenarios/tables.ts"
import { distribution } from "../../bench/stats.ts"

const use = (cpuSeconds: number, peakRssMiB: number) => ({ cpuSeconds, cpuCores: 0, peakRssMiB })

const backfillRun = (round: number, setup: TablesSetup, seconds: number): TablesBackfillRun => {
  const tables = setup === "orders" ? (["orders"] as const) : (["orders", "restaurants", "order_items"] as const)
  const rows = 1_000 * tables.length
  return {
    round,
    setup,
    rows,
    tables: tables.map((table) => ({ table, rows: 1_000, doneS: seconds, lakeRows: 1_000, versions: 3 })),
    endToEndSeconds: seconds,
    endToEndRowsPerS: Math.round(rows / seconds),
    firstDataS: 1,
    streamRowsPerS: Math.round(rows / (seconds - 1)),
    producer: use(seconds, 100 + round),
    consumer: use(seconds * 2, 200),
    machineCpuCores: 1,
    loadAverage: [1, 1]
  }
}

const latencyRun = (setup: TablesSetup, perTable: Record<string, ReadonlyArray<number>>): TablesLatencyRun => ({
  setup,
  rate: 600,
  durationS: 10,
  achievedRate: 600,
  transactions: 500,
  tables: Object.entries(perTable).map(([table, values]) => ({
    table: table as "orders",
    inserted: values.length / 2,
    updated: values.length / 2,
    latencyMs: distribution(values),
    captureMs: distribution(values.map((v) => v / 10)),
    missing: 0,
    versions: 10,
    lakeRows: 5,
    sourceRows: 5,
    batches: { count: 1, meanMessages: 1, openMs: distribution([1]), writeMs: distribution([1]) },
    backlogFlagged: 0
  })),
  allLatencyMs: distribution(Object.values(perTable).flat()),
  drainS: 0.1,
  producer: use(1, 100),
  consumer: use(1, 100),
  machineCpuCores: 1,
  loadAverage: [1, 1]
})

describe("summariseTables", () => {
  it("takes the backfill ratios round by round, then their median", () => {
    // Round 2 ran on a machine twice as slow for both setups: its ratio is the same as round 1's.
    const runs = [
      backfillRun(1, "orders", 2), backfillRun(1, "three", 5),
      backfillRun(2, "orders", 4), backfillRun(2, "three", 10),
      backfillRun(3, "orders", 2), backfillRun(3, "three", 8)
    ]
    const [orders, three] = summariseTables(runs, []).backfill
    expect(orders).toMatchObject({ setup: "orders", runs: 3, rows: 1_000, endToEndSeconds: 2, timeVsOrders: 1, rateVsOrders: 1 })
    // Time ratios 2.5, 2.5, 4 → 2.5; rate ratios (3,000/5 ÷ 1,000/2 = 1.2), 1.2, 0.75 → 1.2.
    expect(three).toMatchObject({ setup: "three", runs: 3, rows: 3_000, endToEndSeconds: 8, timeVsOrders: 2.5, rateVsOrders: 1.2 })
    expect(three!.producerPeakRssMiB).toBe(102)
  })

  it("divides each table's latency percentiles by the orders table's alone", () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1)
    const summary = summariseTables([], [
      latencyRun("orders", { orders: hundred }),
      latencyRun("three", { orders: hundred.map((v) => v * 2), restaurants: hundred.map((v) => v * 3) })
    ])
    expect(summary.latency.map((l) => [l.setup, l.table, l.p50, l.p99, l.vsOrdersAlone.p50, l.vsOrdersAlone.p99])).toEqual([
      ["orders", "orders", 50, 99, 1, 1],
      ["three", "orders", 100, 198, 2, 2],
      ["three", "restaurants", 150, 297, 3, 3]
    ])
  })

  it("has no ratio without a baseline in the run", () => {
    const summary = summariseTables([backfillRun(1, "three", 5)], [latencyRun("three", { orders: [10, 20] })])
    expect(summary.backfill[0]).toMatchObject({ timeVsOrders: null, rateVsOrders: null })
    expect(summary.latency[0]!.vsOrdersAlone).toEqual({ p50: null, p95: null, p99: null })
  })
})
