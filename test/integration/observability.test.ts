/**
 * /metrics and /health of the running programs, scraped while they move real orders: the counters
 * must match what reached the topic and the lake.
 */
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { describeIntegration } from "../support/endpoints.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { startProgram } from "../support/pipelineProcess.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

/** A Prometheus text exposition as `name{labels}` → value. */
const parseMetrics = (text: string) =>
  new Map(text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).map((l) => {
    const at = l.lastIndexOf(" ")
    return [l.slice(0, at), Number(l.slice(at + 1))] as const
  }))

const scrape = async (port: number) => parseMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())

const portOf = (line: Record<string, unknown>) => Number((line["annotations"] as Record<string, unknown>)["port"])

describeIntegration("observability", (endpoints) => {
  let pipeline: TestPipeline | undefined
  afterAll(() => pipeline?.close())

  it("serves Prometheus counters that match the lake, and health that reflects the connections", async () => {
    const p = pipeline = await makeTestPipeline(endpoints, "obs", {
      extra: { STREAMING_BATCH_INTERVAL: "0.2", PRODUCER_BATCH_SIZE: "300", OBSERVABILITY_PROGRESS_INTERVAL: "1" }
    })
    const { lake, pool, table } = p
    const producer = startProgram("producer", p.env)
    const consumer = startProgram("consumer", p.env)
    try {
      const isServing = (l: Record<string, unknown>) => l["message"] === "serving /metrics and /health"
      const producerPort = portOf(await producer.waitForLog(isServing))
      const consumerPort = portOf(await consumer.waitForLog(isServing))

      await pool.query(insertOrdersSql(table, 1, 1000, "2025-06-01 10:00:00", 20))
      const deadline = Date.now() + 60_000
      let consumerMetrics = await scrape(consumerPort)
      while ((consumerMetrics.get("orders_written_total") ?? 0) < 1000 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250))
        consumerMetrics = await scrape(consumerPort)
      }
      const producerMetrics = await scrape(producerPort)
      // The data files under the date partitions (the lake root also holds the table's _delta_log).
      const files = readdirSync(lake).filter((d) => d.startsWith("date=")).flatMap((d) => readdirSync(join(lake, d)))
      const lakeNow = await summariseLake(lake)

      expect(lakeNow.rows).toBe(1000)
      expect(producerMetrics.get("orders_captured_total")).toBe(1000)
      expect(producerMetrics.get("orders_published_total")).toBe(1000)
      expect(producerMetrics.get("producer_cursor_created_at_seconds")).toBe(Date.parse(lakeNow.maxCreated) / 1000)
      expect(consumerMetrics.get("orders_consumed_total")).toBe(1000)
      expect(consumerMetrics.get("orders_written_total")).toBe(1000)
      expect(consumerMetrics.get("lake_files_written_total")).toBe(files.length)
      expect(consumerMetrics.get("order_commit_to_lake_seconds_count")).toBe(1000)
      expect(consumerMetrics.get("order_commit_to_lake_seconds_bucket{le=\"+Inf\"}")).toBe(1000)
      expect(consumerMetrics.get("consumer_batch_duration_seconds_count")).toBeGreaterThan(0)

      const producerHealth = await fetch(`http://127.0.0.1:${producerPort}/health`)
      expect(producerHealth.status).toBe(200)
      expect(await producerHealth.json()).toMatchObject({ ready: true, checks: { database: { ok: true }, broker: { ok: true } } })
      const consumerHealth = await fetch(`http://127.0.0.1:${consumerPort}/health`)
      expect(consumerHealth.status).toBe(200)
      expect(await consumerHealth.json()).toMatchObject({ ready: true, checks: { broker: { ok: true }, lake: { ok: true } } })
      // Liveness: the process answers, whatever its connections (for a container's restart policy).
      const live = await fetch(`http://127.0.0.1:${consumerPort}/health/live`)
      expect(live.status).toBe(200)
      expect(await live.json()).toEqual({ program: "consumer", live: true })

      // Lag is refreshed from the broker every few seconds; it must settle at zero on every partition.
      const lagDeadline = Date.now() + 15_000
      let lags: Array<number> = []
      while (Date.now() < lagDeadline) {
        const metrics = await scrape(consumerPort)
        lags = [0, 1, 2].map((p) => metrics.get(`consumer_lag_messages{partition="${p}"}`) ?? -1)
        if (lags.every((lag) => lag === 0)) break
        await new Promise((r) => setTimeout(r, 500))
      }
      expect(lags).toEqual([0, 0, 0])
      await consumer.waitForLog((l) => l["message"] === "progress" && (l["annotations"] as Record<string, unknown>)["written"] === 1000)
    } finally {
      expect(await producer.stop()).toBe(0)
      expect(await consumer.stop()).toBe(0)
    }
  })
})
