/**
 * The short chaos run (`npm run chaos -- --quick`) as part of the suite, so CI guards it: orders
 * generated with late commits, rollbacks and ties while the producer and the consumer are SIGKILLed
 * (and hit crash points), the broker is SIGKILLed and restarted, and garbage lands in the raw topic.
 * The run uses the suite's PostgreSQL but starts its own broker, since it must restart it.
 * The seed is random per run (CHAOS_SEED fixes it); a failure prints it for `--seed` replays.
 * At the end Spark (delta-spark) reads the final table and must agree with PostgreSQL. A second run
 * does the same with three consumers sharing the topic and the table on an S3 server that is itself
 * SIGKILLed and restarted (`npm run chaos -- --quick --consumers 3 --lake s3`).
 */
import { expect, it } from "vitest"
import { quickChaos } from "../../scripts/chaos/options.ts"
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
})
