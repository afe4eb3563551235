/**
 * The chaos report's second table (the restaurants of `tables:`): a run whose restaurants table or
 * history differs from PostgreSQL or from what the run committed in any way fails, with a line
 * naming it; a clean one adds nothing.
 */
import { describe, expect, it } from "vitest"
import type { CapturedTableCheck } from "../../scripts/chaos/capturedTableCheck.ts"
import { type ChaosReport, failuresOf, formatSummary, reportLine } from "../../scripts/chaos/report.ts"
import { newLifecycleStats } from "../../scripts/chaos/lifecycles.ts"
import { newOutageStats } from "../../scripts/chaos/pgOutage.ts"

const committed = { snapshot: 200, insert: 80, update: 160, delete: 20 }

const cleanCheck: CapturedTableCheck = {
  table: "r_restaurants",
  sourceRows: 260,
  lakeRows: 260,
  lakeFiles: 30,
  missing: 0,
  duplicated: 0,
  unexpected: 0,
  mismatched: 0,
  wrongPartition: 0,
  history: { rows: 460, byOp: { ...committed }, expectedByOp: { ...committed }, keys: 280, repeated: 0, countMismatches: 0, unknownKeys: 0, absentKeys: 0, lastStateMismatches: 0 },
  samples: { missing: [], duplicated: [], unexpected: [], mismatched: [], repeated: [], countMismatches: [], lastStateMismatches: [] }
}

const reportWith = (check: CapturedTableCheck | null): ChaosReport => {
  const kills = { total: 1, signal: 1, crashPoints: 0, starts: 2, crashPointsHit: [] }
  const stop = { code: 0, signal: null, ms: 100, timedOut: false, clean: true }
  const changes = { snapshot: 1, insert: 1, update: 0, delete: 0 }
  return {
    ok: true, failures: [], seed: 1, roll: "r", pg: "pg", brokers: "b", durationS: 20, capture: "logical", stateDir: null,
    orders: { committed: 2, generatorCommitted: 2, rolledBackTransactions: 0, rolledBackRows: 0, lateCommits: 0, lateRows: 0, tieGroups: 0, tieRows: 0 },
    kills: { producer: kills, consumer: kills },
    unexpectedExits: [], brokerRestarts: 1, brokerDownMs: [1000], pgRestarts: 1, pgDownMs: [1000], pgRestartVia: "proxy", pgRestartSkipped: null,
    outages: newOutageStats(),
    changes: { committed: changes, total: 2, ordersEver: 2, deletedOrders: 0, lifecycles: newLifecycleStats() },
    history: {
      rows: 2, byOp: changes, expectedByOp: changes, orders: 2, repeated: 0, countMismatches: 0, unknownOrders: 0, absentOrders: 0, lastStateMismatches: 0,
      samples: { repeated: [], countMismatches: [], unknownOrders: [], absentOrders: [], lastStateMismatches: [] }
    },
    secondTable: {
      table: "r_restaurants", committed, total: 460, rowsEver: 280,
      workload: { inserts: 80, updates: 160, deletes: 20, transactions: 100, rolledBack: 5, insertThenUpdate: 10, withOrders: 5, columnAddedAtMs: 9000, rowsWithAddedColumn: 50 },
      check
    },
    lakeStore: "local", s3Restarts: 0, s3DownMs: [], s3LostCommitAnswers: 0,
    garbage: { injected: 0, kinds: {}, dlq: { records: 0, matched: 0, repeated: 0, missingKeys: [], wrongReason: [], foreign: [] } },
    lake: {
      sourceRows: 2, lakeRows: 2, lakeDistinctIds: 2, lakeFiles: 1, missing: 0, duplicated: 0, unexpected: 0, mismatched: 0, rolledBackInLake: 0,
      wrongPartition: 0, sourceSum: "1.00", lakeSum: "1.00", missingIds: [], samples: { missing: [], duplicated: [], unexpected: [], mismatched: [] }
    },
    drain: { ms: 1000, timedOut: false, settledShort: false },
    stop: { producer: stop, consumer: stop },
    wallMs: 60_000,
    injectedGarbage: []
  } as ChaosReport
}

const failures = (check: CapturedTableCheck | null) => failuresOf(reportWith(check), { producer: 1, consumer: 1 }, 1, 0, 1)

describe("the chaos report's second table", () => {
  it("adds no failure when the table and its history agree, and shows its line", () => {
    expect(failures(cleanCheck)).toEqual([])
    expect(formatSummary(reportWith(cleanCheck))).toMatch(/restaurants \(second table\)\s+280 rows ever; changes committed 460: 200 snapshot, 80 insert, 160 update, 20 delete/)
    expect(JSON.parse(reportLine(reportWith(cleanCheck))).second_table).toMatchObject({ rows: 260, history_rows: 460, missing: 0, mismatched: 0 })
  })

  it.each([
    ["a missing row", { missing: 1, samples: { ...cleanCheck.samples, missing: ["5000000007"] } }, /1 r_restaurants rows missing from its Delta table, e.g. 5000000007/],
    ["a duplicated row", { duplicated: 2 }, /2 duplicated r_restaurants rows/],
    ["a row PostgreSQL lacks", { unexpected: 1 }, /1 r_restaurants rows in its Delta table not in PostgreSQL/],
    ["a value differing", { mismatched: 1, samples: { ...cleanCheck.samples, mismatched: [{ key: "5", source: "[\"5\",\"a\"]", lake: "[\"5\",\"b\"]" }] } }, /1 r_restaurants rows differ from PostgreSQL/],
    ["a row in the wrong partition", { wrongPartition: 3 }, /3 r_restaurants rows in another partition/],
    ["a change twice", { history: { ...cleanCheck.history, repeated: 1 } }, /1 changes twice in r_restaurants's history/],
    ["a change missing", { history: { ...cleanCheck.history, byOp: { ...committed, update: 159 } } }, /r_restaurants's history holds 159 update changes, 160 committed/],
    ["a last change not the final state", { history: { ...cleanCheck.history, lastStateMismatches: 1 } }, /1 r_restaurants rows whose last change is not their final state/]
  ])("fails on %s", (_, change, line) => {
    const found = failures({ ...cleanCheck, ...change } as CapturedTableCheck)
    expect(found).toHaveLength(1)
    expect(found[0]).toMatch(line)
  })

  it("fails when the table was not checked at all", () => {
    expect(failures(null)).toEqual(["r_restaurants not checked"])
  })
})
