/**
 * The short chaos run (`npm run chaos -- --quick`) as part of the suite, so CI guards it: orders
 * generated with late commits, rollbacks and ties while the producer and the consumer are SIGKILLed
 * (and hit crash points), the broker is SIGKILLed and restarted, and garbage lands in the raw topic.
 * The run uses the suite's PostgreSQL but starts its own broker, since it must restart it.
 * The seed is random per run (CHAOS_SEED fixes it); a failure prints it for `--seed` replays.
 * At the end Spark (delta-spark) reads the final table and must agree with PostgreSQL. A second run
 * does the same with three consumers sharing the topic and the table on an S3 server that is itself
 * SIGKILLed and restarted (`npm run chaos -- --quick --consumers 3 --lake s3`). A third run captures
 * through logical replication (`npm run chaos -- --quick --capture logical --pg-restart proxy`):
 * lifecycles, multi-statement and large transactions, crash points between the two commits of each
 * program, and PostgreSQL cut mid-stream; orders must equal PostgreSQL and order_changes must hold
 * every committed change once. A second table (`tables:`, `<roll>_restaurants`, partitioned by a
 * timestamptz) is inserted, updated and deleted beside the orders, partly in their transactions,
 * with an ADD COLUMN mid-run: its Delta table must equal PostgreSQL row by row and its history hold
 * every committed change once; Spark counts its rows too. Its PostgreSQL "restart" cuts the run's own connections at a proxy
 * (and terminates their backends) rather than restarting the server, which would also cut every
 * other client of it.
 */
import { expect, it } from "vitest"
import { logicalChaos, quickChaos } from "../../scripts/chaos/options.ts"
import { formatSummary, reportLine } from "../../scripts/chaos/report.ts"
import { type ChaosReport, runChaos } from "../../scripts/chaos/runChaos.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { compactionCommits, sparkAgrees } from "../support/sparkTableCheck.ts"

/** PostgreSQL's committed orders, each once in the lake, with its values, in its date partition. */
const expectExact = (report: ChaosReport, runSeed: number) => {
  expect(report.lake, `seed ${runSeed}`).toMatchObject({
    missing: 0,
    duplicated: 0,
    unexpected: 0,
    mismatched: 0,
    rolledBackInLake: 0,
    wrongPartition: 0,
    sourceRows: report.orders.committed
  })
  expect(report.lake!.lakeSum).toBe(report.lake!.sourceSum)
}

const seed = process.env["CHAOS_SEED"] !== undefined ? Number(process.env["CHAOS_SEED"]) : Math.floor(Math.random() * 2 ** 31)

describeIntegration("chaos (short run)", (endpoints) => {
  it("loses, duplicates and invents nothing while programs and the broker are killed", async () => {
    // The consumer compacts as it streams (the default), so its crash points include the compactor's.
    const options = {
      ...quickChaos(seed),
      pgUrl: endpoints.pgUrl,
      log: (line: string) => console.info(`[chaos] ${line}`),
      checkTable: async (lake: string, expected: { readonly rows: number; readonly sum: string }) => {
        compactions = await compactionCommits(lake)
        return sparkAgrees(lake, expected)
      }
    }
    let compactions = 0
    const report = await runChaos(options)
    console.info(`${formatSummary(report)}\n${reportLine(report)}`)

    expectExact(report, seed)
    // The run did what it claims: orders of every shape, every kill, the restart, the garbage.
    expect(report.orders.committed).toBeGreaterThan(1000)
    expect(report.orders.lateCommits).toBeGreaterThan(0)
    expect(report.orders.tieGroups).toBeGreaterThan(0)
    expect(report.orders.rolledBackRows).toBeGreaterThan(0)
    expect(report.kills.producer.signal).toBe(options.kills)
    expect(report.kills.consumer.signal).toBe(options.kills)
    expect(report.brokerRestarts).toBe(options.brokerRestarts)
    expect(report.garbage.injected).toBeGreaterThanOrEqual(options.garbage)
    // Every bad message in the DLQ with its reason, nothing else there.
    expect(report.garbage.dlq).toMatchObject({ matched: report.garbage.injected, missingKeys: [], wrongReason: [], foreign: [] })
    expect(report.unexpectedExits).toEqual([])
    expect(report.stop.producer?.clean).toBe(true)
    expect(report.stop.consumer?.clean).toBe(true)
    expect(report.failures).toEqual([])
    expect(compactions, "the consumer compacted the table during the run").toBeGreaterThan(0)
  }, 240_000)

  it("three consumers on the lake on S3: kills move partitions, the S3 server restarts, still exactly once", async () => {
    const options = {
      ...quickChaos(seed + 1),
      consumers: 3,
      lake: "s3" as const,
      pgUrl: endpoints.pgUrl,
      log: (line: string) => console.info(`[chaos s3] ${line}`),
      checkTable: sparkAgrees
    }
    const report = await runChaos(options)
    console.info(`${formatSummary(report)}\n${reportLine(report)}`)

    expectExact(report, seed + 1)
    expect(report.lakeStore).toBe("s3")
    expect(report.s3Restarts).toBe(options.s3Restarts)
    // Commits whose answer the proxy lost after S3 applied them: each recognised, nothing lost or doubled.
    expect(report.s3LostCommitAnswers).toBeGreaterThan(0)
    expect(report.brokerRestarts).toBe(options.brokerRestarts)
    // The consumer kills are spread over the three (each one's restart moves partitions in the group).
    expect(Object.keys(report.kills).sort()).toEqual(["consumer", "consumer-2", "consumer-3", "producer"])
    const consumerKills = ["consumer", "consumer-2", "consumer-3"].reduce((n, name) => n + report.kills[name]!.signal, 0)
    expect(consumerKills).toBe(options.kills)
    expect(report.garbage.dlq).toMatchObject({ matched: report.garbage.injected, missingKeys: [], wrongReason: [], foreign: [] })
    expect(report.unexpectedExits).toEqual([])
    expect(Object.values(report.stop).every((stop) => stop?.clean === true)).toBe(true)
    expect(report.failures).toEqual([])
  }, 300_000)

  it("logical capture: updates, deletes and a PostgreSQL outage; orders equal PostgreSQL, order_changes every change once", async () => {
    const options = {
      ...logicalChaos(quickChaos(seed + 2)),
      pgRestartVia: "proxy" as const,
      pgUrl: endpoints.pgUrl,
      log: (line: string) => console.info(`[chaos logical] ${line}`),
      checkTable: sparkAgrees
    }
    const report = await runChaos(options)
    console.info(`${formatSummary(report)}\n${reportLine(report)}`)

    expectExact(report, seed + 2)
    expect(report.capture).toBe("logical")
    // A workload with a life: every kind of change, each committed one in order_changes exactly once.
    const changes = report.changes!
    expect(changes.committed.snapshot).toBe(options.snapshotRows)
    expect(changes.committed.insert).toBeGreaterThan(500)
    expect(changes.committed.update).toBeGreaterThan(changes.committed.insert)
    expect(changes.committed.delete).toBeGreaterThan(0)
    expect(changes.lifecycles.multiTransactions).toBeGreaterThan(0)
    expect(changes.lifecycles.bulkRows).toBeGreaterThan(1000)
    expect(report.history, `seed ${seed + 2}`).toMatchObject({
      rows: changes.total,
      byOp: changes.committed,
      repeated: 0,
      countMismatches: 0,
      unknownOrders: 0,
      absentOrders: 0,
      lastStateMismatches: 0
    })
    // The faults: kills, both programs' crash points between their two commits, the broker, PostgreSQL.
    expect(report.kills.producer.signal).toBe(options.kills)
    expect(report.kills.consumer.signal).toBe(options.kills)
    expect(report.kills.producer.crashPointsHit).toContain("producer.after-publish")
    expect(report.kills.consumer.crashPointsHit).toContain("consumer.after-history-commit")
    expect(report.brokerRestarts).toBe(options.brokerRestarts)
    expect(report.pgRestarts).toBe(1)
    expect(report.garbage.dlq).toMatchObject({ matched: report.garbage.injected, missingKeys: [], wrongReason: [], foreign: [] })
    // The second table: every kind of change, the ADD COLUMN, changes sharing the orders' commits.
    const second = report.secondTable!
    expect(second.committed.snapshot).toBeGreaterThan(0)
    expect(second.committed.insert).toBeGreaterThan(20)
    expect(second.committed.update).toBeGreaterThan(second.committed.insert)
    expect(second.committed.delete).toBeGreaterThan(0)
    expect(second.workload.withOrders).toBeGreaterThan(0)
    expect(second.workload.insertThenUpdate).toBeGreaterThan(0)
    expect(second.workload.columnAddedAtMs).not.toBeNull()
    expect(second.workload.rowsWithAddedColumn).toBeGreaterThan(0)
    expect(second.check, `seed ${seed + 2}`).toMatchObject({
      missing: 0,
      duplicated: 0,
      unexpected: 0,
      mismatched: 0,
      wrongPartition: 0,
      lakeRows: second.check!.sourceRows,
      history: {
        rows: second.total,
        byOp: second.committed,
        repeated: 0,
        countMismatches: 0,
        unknownKeys: 0,
        absentKeys: 0,
        lastStateMismatches: 0
      }
    })
    expect(report.unexpectedExits).toEqual([])
    expect(Object.values(report.stop).every((stop) => stop?.clean === true)).toBe(true)
    expect(report.failures).toEqual([])
  }, 270_000)
})
