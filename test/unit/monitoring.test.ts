/**
 * monitoring/: the alert rules pass promtool's checks and unit tests (a firing and a silent case per
 * alert), every PromQL expression of the dashboard parses, and Compose wires Prometheus and Grafana
 * to the programs and these files. promtool comes with Debian's `prometheus` package (.ci/run
 * installs it); without it these tests are skipped, except under CI, where they fail.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { parse, stringify } from "yaml"
import { repoRoot } from "../../scripts/stack/paths.ts"
import {
  alertsFile,
  alertsTestFile,
  dashboard,
  dashboardExpressions,
  hasCommand,
  inCi,
  monitoringDir,
  prometheusConfigFile
} from "../support/monitoring.ts"

const hasPromtool = hasCommand("promtool")

const promtool = (...args: Array<string>) =>
  new Promise<{ code: number; output: string }>((resolve) =>
    execFile("promtool", args, { cwd: repoRoot, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: stdout + stderr }))
  )

interface AlertRule {
  readonly alert: string
  readonly expr: string
  readonly annotations: Record<string, string>
}
const rules = (parse(readFileSync(alertsFile, "utf8")) as { groups: Array<{ rules: Array<AlertRule> }> }).groups.flatMap((g) => g.rules)
const ruleTests = (parse(readFileSync(alertsTestFile, "utf8")) as {
  tests: Array<{ name: string; alert_rule_test?: Array<{ alertname: string; exp_alerts: Array<unknown> }> }>
}).tests

/** The metric names the programs export (src/observability/metrics.ts, captureMetrics.ts), plus Prometheus' own `up`. */
const exportedMetrics = (() => {
  const source = ["metrics.ts", "captureMetrics.ts"].map((file) => readFileSync(join(repoRoot, "src", "observability", file), "utf8")).join("\n")
  const names = [...source.matchAll(/Metric\.(counter|gauge|histogram)\(\s*"([a-z_]+)"/g)].flatMap(([, kind, name]) =>
    kind === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name!]
  )
  return new Set([...names, "up"])
})()
const metricNamesIn = (expr: string) =>
  [...expr.replace(/"[^"]*"/g, "\"\"").matchAll(/\b([a-z_]+_(?:total|seconds|messages|offset|ready|ok|bucket|count|sum)|up)\b(?!\s*\()/g)]
    .map((m) => m[1]!)

describe.runIf(hasPromtool || inCi)("monitoring rules (promtool)", () => {
  const scratch = mkdtempSync(join(tmpdir(), "fop-monitoring-"))
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))

  it("promtool is installed (Debian package prometheus; .ci/run installs it)", () => {
    expect(hasPromtool, "promtool not found: apt-get install prometheus").toBe(true)
  })

  it("the alert rules and the Prometheus configuration pass promtool check", async () => {
    const rulesCheck = await promtool("check", "rules", alertsFile)
    expect(rulesCheck.code, rulesCheck.output).toBe(0)
    const configCheck = await promtool("check", "config", prometheusConfigFile)
    expect(configCheck.code, configCheck.output).toBe(0)
  })

  it("the alert rules pass their promtool unit tests", async () => {
    const result = await promtool("test", "rules", alertsTestFile)
    expect(result.code, result.output).toBe(0)
  })

  it("every PromQL expression of the dashboard parses", async () => {
    const expressions = dashboardExpressions()
    expect(expressions.length).toBeGreaterThan(10)
    const file = join(scratch, "dashboard-expressions.yml")
    writeFileSync(file, stringify({
      groups: [{ name: "dashboard", rules: expressions.map((e, i) => ({ record: `dashboard:expression_${i}`, expr: e.expr })) }]
    }))
    const result = await promtool("check", "rules", file)
    expect(result.code, result.output).toBe(0)
  })
})

describe("monitoring files", () => {
  it("each alert has a summary, a runbook, and a firing and a silent case in alerts.test.yml", () => {
    const names = rules.map((r) => r.alert)
    expect(names).toEqual(expect.arrayContaining([
      "FoodOrdersConsumerLagGrowing",
      "FoodOrdersCommitToLakeSlow",
      "FoodOrdersCaptureHeldBack",
      "FoodOrdersProducerCursorStalled",
      "FoodOrdersDeadLettered",
      "FoodOrdersNotReady"
    ]))
    const checks = ruleTests.flatMap((t) => t.alert_rule_test ?? [])
    for (const rule of rules) {
      expect(rule.annotations["summary"], rule.alert).toBeTruthy()
      expect(rule.annotations["runbook"], rule.alert).toBeTruthy()
      const mine = checks.filter((c) => c.alertname === rule.alert)
      expect(mine.some((c) => c.exp_alerts.length > 0), `${rule.alert} fires in some case`).toBe(true)
      expect(mine.some((c) => c.exp_alerts.length === 0), `${rule.alert} stays silent in some case`).toBe(true)
    }
    // A slot nobody consumes fills the database's disk: logical capture comes with its alert.
    expect(rules.map((rule) => rule.alert)).toContain("FoodOrdersReplicationSlotRetainingWal")
  })

  it("alerts and dashboard use only metrics the programs export", () => {
    const used = [...rules.map((r) => r.expr), ...dashboardExpressions().map((e) => e.expr)].flatMap(metricNamesIn)
    expect(used.length).toBeGreaterThan(20)
    expect([...new Set(used)].filter((name) => !exportedMetrics.has(name))).toEqual([])
  })

  it("Compose runs Prometheus and Grafana (profile monitoring) on these files, scraping the programs' ports", () => {
    const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8")) as {
      services: Record<string, { profiles?: Array<string>; volumes?: Array<string>; environment?: Record<string, string> }>
    }
    const prometheus = compose.services["prometheus"]!
    const grafana = compose.services["grafana"]!
    expect(prometheus.profiles).toEqual(["monitoring"])
    expect(grafana.profiles).toEqual(["monitoring"])
    expect(prometheus.volumes).toContain("./monitoring/prometheus:/etc/prometheus:ro")
    expect(grafana.volumes).toEqual(expect.arrayContaining([
      "./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro",
      "./monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro"
    ]))
    const config = parse(readFileSync(prometheusConfigFile, "utf8")) as {
      rule_files: Array<string>
      scrape_configs: Array<{
        job_name: string
        static_configs?: Array<{ targets: Array<string> }>
        dns_sd_configs?: Array<{ names: Array<string>; type: string; port: number }>
      }>
    }
    expect(config.rule_files).toEqual(["alerts.yml"])
    // The consumer may be scaled: its service name is resolved to every replica (DNS A records).
    const targets = Object.fromEntries(config.scrape_configs.map((s) => [
      s.job_name,
      [
        ...(s.static_configs ?? []).flatMap((c) => c.targets),
        ...(s.dns_sd_configs ?? []).flatMap((c) => (c.type === "A" ? c.names.map((name) => `${name}:${c.port}`) : []))
      ]
    ]))
    const env = compose.services["producer"]!.environment!
    expect(targets).toEqual({
      producer: [`producer:${env["OBSERVABILITY_PRODUCER_PORT"]}`],
      consumer: [`consumer:${env["OBSERVABILITY_CONSUMER_PORT"]}`]
    })
    const provisioning = parse(readFileSync(join(monitoringDir, "grafana", "provisioning", "dashboards", "dashboards.yml"), "utf8")) as {
      providers: Array<{ options: { path: string } }>
    }
    expect(provisioning.providers[0]!.options.path).toBe("/var/lib/grafana/dashboards")
    expect(dashboard().uid).toBe("food-orders-pipeline")
  })
})
