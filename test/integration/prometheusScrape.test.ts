/**
 * A real Prometheus server (Debian's `prometheus` package; .ci/run installs it) scrapes the running
 * producer and consumer, loads monitoring/prometheus/alerts.yml, and its HTTP API answers with what
 * the lake holds: orders written and the commit-to-lake histogram's count. Every dashboard expression
 * runs against it. Without the binary the test is skipped, except under CI, where it fails.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { stringify } from "yaml"
import { describeIntegration } from "../support/endpoints.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { alertsFile, dashboardExpressions, hasCommand, inCi } from "../support/monitoring.ts"
import { startProgram } from "../support/pipelineProcess.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as import("node:net").AddressInfo
      server.close(() => resolve(port))
    })
  })

const portOf = (line: Record<string, unknown>) => Number((line["annotations"] as Record<string, unknown>)["port"])

interface Sample {
  readonly metric: Record<string, string>
  readonly value: [number, string]
}

describeIntegration("Prometheus scraping the programs", (endpoints) => {
  const hasPrometheus = hasCommand("prometheus")
  let pipeline: TestPipeline | undefined
  let server: ChildProcess | undefined
  const scratch = mkdtempSync(join(tmpdir(), "fop-prometheus-"))
  afterAll(async () => {
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once("exit", resolve))
      server.kill("SIGTERM")
      await exited
    }
    await pipeline?.close()
    rmSync(scratch, { recursive: true, force: true })
  })

  it.runIf(hasPrometheus || inCi)("finds the lake's orders and latency histogram through Prometheus' HTTP API", async () => {
    expect(hasPrometheus, "prometheus not found: apt-get install prometheus").toBe(true)
    const p = pipeline = await makeTestPipeline(endpoints, "prom", { extra: { STREAMING_BATCH_INTERVAL: "0.2" } })
    const producer = startProgram("producer", p.env)
    const consumer = startProgram("consumer", p.env)
    try {
      const isServing = (l: Record<string, unknown>) => l["message"] === "serving /metrics and /health"
      const producerPort = portOf(await producer.waitForLog(isServing))
      const consumerPort = portOf(await consumer.waitForLog(isServing))

      const port = await freePort()
      const config = join(scratch, "prometheus.yml")
      writeFileSync(config, stringify({
        global: { scrape_interval: "1s", evaluation_interval: "1s" },
        rule_files: [alertsFile],
        scrape_configs: [
          { job_name: "producer", static_configs: [{ targets: [`127.0.0.1:${producerPort}`] }] },
          { job_name: "consumer", static_configs: [{ targets: [`127.0.0.1:${consumerPort}`] }] }
        ]
      }))
      let log = ""
      server = spawn("prometheus", [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(scratch, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`
      ], { stdio: ["ignore", "pipe", "pipe"] })
      server.stdout!.on("data", (c: Buffer) => (log += c.toString("utf8")))
      server.stderr!.on("data", (c: Buffer) => (log += c.toString("utf8")))
      const api = async <A>(path: string): Promise<A> => {
        const body = await (await fetch(`http://127.0.0.1:${port}${path}`)).json() as { status: string; data: A; error?: string }
        expect(body.status, `${path}: ${body.error ?? ""}`).toBe("success")
        return body.data
      }
      const query = (promql: string) =>
        api<{ result: Array<Sample> }>(`/api/v1/query?query=${encodeURIComponent(promql)}`).then((d) => d.result)
      const eventually = async <A>(what: string, get: () => Promise<A>, done: (a: A) => boolean, timeoutMs = 30_000) => {
        const deadline = Date.now() + timeoutMs
        let last: A | undefined
        while (Date.now() < deadline) {
          last = await get().catch(() => undefined)
          if (last !== undefined && done(last)) return last
          await new Promise((r) => setTimeout(r, 250))
        }
        throw new Error(`${what}: not reached in ${timeoutMs} ms; last ${JSON.stringify(last)}\nprometheus log:\n${log.slice(-3000)}`)
      }
      await eventually("prometheus ready", () => fetch(`http://127.0.0.1:${port}/-/ready`).then((r) => r.status), (s) => s === 200)

      // Live orders (created_at from the database): the histogram sees commit-to-lake latency.
      await p.pool.query(`INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status)
        SELECT 'Customer ' || g, 'Pizza Palace', 'Margherita Pizza', 100 + g % 400, 'PLACED' FROM generate_series(1, 400) AS g`)
      await eventually("lake holds the orders", () => summariseLake(p.lake), (s) => s.rows === 400, 60_000)
      const lake = await summariseLake(p.lake)

      const value = (samples: Array<Sample>) => samples.length === 1 ? Number(samples[0]!.value[1]) : NaN
      // Each target is scraped on its own clock: wait for the scrape after the last write of each series.
      const scraped = (promql: string) => eventually(`${promql} = ${lake.rows}`, () => query(promql), (r) => value(r) === lake.rows)
      await scraped(`orders_written_total{job="consumer"}`)
      await scraped(`orders_published_total{job="producer"}`)
      expect(value(await query(`orders_published_total{job="producer"}`))).toBe(lake.rows)
      expect(value(await query(`order_commit_to_lake_seconds_count{job="consumer"}`))).toBe(lake.rows)
      expect(value(await query(`order_commit_to_lake_seconds_bucket{job="consumer", le="+Inf"}`))).toBe(lake.rows)
      const p99 = value(await query(`histogram_quantile(0.99, sum by (le) (order_commit_to_lake_seconds_bucket{job="consumer"}))`))
      expect(p99).toBeGreaterThan(0)
      expect(p99).toBeLessThan(40)
      expect(value(await query(`producer_cursor_created_at_seconds{job="producer"}`))).toBeCloseTo(Date.parse(lake.maxCreated) / 1000, -1)
      // Caught up: the cursor is at the newest order (to the cursor gauge's millisecond).
      expect(value(await query(`producer_source_newest_created_at_seconds - on (job, instance) producer_cursor_created_at_seconds`))).toBeCloseTo(0, 2)
      const ready = await query(`health_ready`)
      expect(Object.fromEntries(ready.map((s) => [s.metric["job"], s.value[1]]))).toEqual({ producer: "1", consumer: "1" })
      // One series per rejection reason, at 0 before the first dead letter (invalid_change among them).
      expect((await query(`orders_dead_lettered_total{job="consumer"}`)).map((s) => s.metric["reason"]).sort()).toEqual([
        "empty_value", "invalid_change", "invalid_json", "invalid_row", "invalid_schema", "invalid_utf8", "negative_amount", "null_created_at", "null_order_id", "value_too_large"
      ])

      // The alert rules loaded and evaluate without errors against the programs' real series.
      const rules = await eventually(
        "alert rules evaluated",
        () => api<{ groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> }>("/api/v1/rules"),
        (d) => d.groups.flatMap((g) => g.rules).every((r) => r.health === "ok")
      )
      expect(rules.groups.flatMap((g) => g.rules).map((r) => r.name)).toContain("FoodOrdersProducerCursorStalled")
      const firing = await api<{ alerts: Array<{ labels: Record<string, string>; state: string }> }>("/api/v1/alerts")
      expect(firing.alerts.filter((a) => a.labels["alertname"] !== "FoodOrdersCommitToLakeSlow")).toEqual([])

      // Every dashboard panel's query runs, and the ones that depend on traffic have data.
      for (const { expr, panel } of dashboardExpressions()) {
        const result = await query(expr)
        expect(Array.isArray(result), `${panel}: ${expr}`).toBe(true)
      }
      // A rate needs two scrapes of the histogram, which appeared with the first orders.
      const latencyPanel = dashboardExpressions().find((e) => e.panel.startsWith("Commit to lake"))!.expr
      await eventually("the latency panel has data", () => query(latencyPanel), (r) => r.length === 1)
    } finally {
      expect(await producer.stop()).toBe(0)
      expect(await consumer.stop()).toBe(0)
    }
  })
})
