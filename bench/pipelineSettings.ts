/**
 * The pipeline settings a run measured: the tuning sections of configs/orders_stream.yml with the
 * environment overrides the benchmark's programs get, so a result says what it was measured with
 * even as defaults change.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "yaml"
import { repoRoot } from "../scripts/stack/paths.ts"
import { ordersTableStatements } from "../scripts/stack/sql.ts"

const tuningSections = ["streaming", "producer", "consumer", "observability"] as const

export interface PipelineSettings {
  readonly fromFile: string
  readonly values: Record<string, Record<string, unknown>>
  /** The table DDL has a trigger that NOTIFYs on insert (the producer can wake on commit instead of polling). */
  readonly notifyTrigger: boolean
  /** The producer's poll interval in effect (s). */
  readonly batchIntervalS: number
}

export const pipelineSettings = (overrides: Record<string, string>): PipelineSettings => {
  const file = join(repoRoot, "configs", "orders_stream.yml")
  const tree = parse(readFileSync(file, "utf8")) as Record<string, Record<string, unknown>>
  const values: Record<string, Record<string, unknown>> = {}
  for (const section of tuningSections) {
    values[section] = { ...(tree[section] ?? {}) }
    for (const key of Object.keys(values[section])) {
      const name = `${section}_${key}`.toUpperCase()
      const value = overrides[name] ?? process.env[name]
      if (value !== undefined && value !== "") values[section][key] = `${value} (${name})`
    }
  }
  const interval = overrides["STREAMING_BATCH_INTERVAL"] ?? process.env["STREAMING_BATCH_INTERVAL"] ?? tree["streaming"]?.["batch_interval"]
  return {
    fromFile: "configs/orders_stream.yml",
    values,
    notifyTrigger: ordersTableStatements("t").some((s) => /pg_notify|NOTIFY/i.test(s)),
    batchIntervalS: Number(interval)
  }
}
