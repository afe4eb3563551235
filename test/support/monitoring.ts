import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { repoRoot } from "../../scripts/stack/paths.ts"

export const monitoringDir = join(repoRoot, "monitoring")
export const alertsFile = join(monitoringDir, "prometheus", "alerts.yml")
export const alertsTestFile = join(monitoringDir, "prometheus", "alerts.test.yml")
export const prometheusConfigFile = join(monitoringDir, "prometheus", "prometheus.yml")
export const dashboardFile = join(monitoringDir, "grafana", "dashboards", "food-orders-pipeline.json")

/** Whether a command is on the PATH (promtool, prometheus: Debian package `prometheus`). */
export const hasCommand = (command: string): boolean => {
  try {
    execFileSync(command, ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

/** Under CI a missing tool fails the tests that need it instead of skipping them. */
export const inCi = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false"

export interface DashboardPanel {
  readonly title: string
  readonly targets?: ReadonlyArray<{ readonly expr: string }>
}

export const dashboard = (): { uid: string; panels: ReadonlyArray<DashboardPanel> } =>
  JSON.parse(readFileSync(dashboardFile, "utf8")) as { uid: string; panels: ReadonlyArray<DashboardPanel> }

/** The dashboard's PromQL, with Grafana's variables replaced by what they stand for. */
export const dashboardExpressions = (): Array<{ panel: string; expr: string }> =>
  dashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({
    panel: p.title,
    expr: t.expr.replaceAll("$__rate_interval", "1m").replaceAll("$__interval", "1m").replaceAll("$job", "producer|consumer")
  })))
