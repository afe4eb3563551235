/**
 * Outages with the programs running (no `--once`): they keep running, keep their position, say what
 * they wait for, and resume without loss.
 */
import { existsSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { describeIntegration } from "../support/endpoints.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { tableOffsetsCovered } from "../support/tablePosition.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { startProgram } from "../support/pipelineProcess.ts"
import { startTcpProxy } from "../support/tcpProxy.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

const eventually = async (check: () => Promise<boolean>, timeoutMs: number, what: string) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

const lakeRows = async (lake: string) => (existsSync(lake) ? (await summariseLake(lake)).rows : 0)

describeIntegration("outages", (endpoints) => {
  let pipeline: TestPipeline | undefined
  afterAll(() => pipeline?.close())

  it("the producer survives PostgreSQL going away and the consumer survives an unwritable lake", async () => {
    const pgTarget = new URL(endpoints.pgUrl)
    const proxy = await startTcpProxy(pgTarget.hostname, Number(pgTarget.port || 5432))
    const viaProxy = new URL(endpoints.pgUrl)
    viaProxy.hostname = "127.0.0.1"
    viaProxy.port = String(proxy.port())
    const p = pipeline = await makeTestPipeline(endpoints, "out", {
      programPgUrl: viaProxy.toString(),
      extra: { STREAMING_BATCH_INTERVAL: "0.2" }
    })
    const { lake, pool, table, topic } = p
    const producer = startProgram("producer", p.env)
    const consumer = startProgram("consumer", p.env)
    try {
      await pool.query(insertOrdersSql(table, 1, 100, "2025-05-01 10:00:00", 10))
      await eventually(async () => (await lakeRows(lake)) === 100, 60_000, "the first 100 orders in the lake")

      // PostgreSQL goes away: the producer keeps running and says it is retrying.
      await proxy.down()
      await pool.query(insertOrdersSql(table, 101, 50, "2025-05-01 11:00:00", 10))
      const warning = await producer.waitForLog((l) => String(l["message"]).includes("capture cycle failed"), 30_000)
      expect(JSON.stringify(warning)).not.toContain(new URL(endpoints.pgUrl).password || "\u0000no-password")
      await proxy.up()
      await eventually(async () => (await lakeRows(lake)) === 150, 60_000, "the 50 orders inserted during the outage")

      // The next date's partition cannot be created (a file holds its name): no progress, the
      // table's position stays where it was, and the failure is logged.
      const positionBefore = await tableOffsetsCovered(lake, topic)
      expect(positionBefore).not.toBeNull()
      const blocked = join(lake, "date=2025-05-02")
      writeFileSync(blocked, "not a directory")
      await pool.query(insertOrdersSql(table, 151, 30, "2025-05-02 10:00:00", 10))
      const failure = await consumer.waitForLog((l) => String(l["message"]).includes("batch failed; table position kept"), 30_000)
      expect(JSON.stringify(failure)).toContain("date=2025-05-02")
      await new Promise((r) => setTimeout(r, 1000))
      expect(await tableOffsetsCovered(lake, topic)).toBe(positionBefore)
      expect(await lakeRows(lake)).toBe(150)
      rmSync(blocked)
      await eventually(async () => (await lakeRows(lake)) === 180, 60_000, "the 30 orders once the lake is writable")
      const final = await summariseLake(lake)
      expect(final.distinctIds).toBe(180)
    } finally {
      expect(await producer.stop()).toBe(0)
      expect(await consumer.stop()).toBe(0)
      await proxy.down()
    }
  })
})
