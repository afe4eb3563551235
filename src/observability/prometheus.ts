import { Effect, Metric, MetricState, Option } from "effect"

const escapeLabel = (value: string) => value.replaceAll("\\", "\\\\").replaceAll("\"", "\\\"").replaceAll("\n", "\\n")
const labels = (tags: ReadonlyArray<{ key: string; value: string }>, extra: ReadonlyArray<[string, string]> = []) => {
  const all = [...tags.map((t) => [t.key, t.value] as const), ...extra]
  return all.length === 0 ? "" : `{${all.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
}
const number = (n: number | bigint) => (typeof n === "bigint" ? n.toString() : Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : "-Inf")

/** Every metric of this process in the Prometheus text exposition format (version 0.0.4). */
export const prometheusText = Effect.map(Metric.snapshot, (pairs) => {
  const byName = new Map<string, { help: string; type: string; lines: Array<string> }>()
  for (const { metricKey, metricState } of pairs) {
    const name = metricKey.name
    const help = Option.getOrElse(metricKey.description, () => name)
    const tags = metricKey.tags
    let entry = byName.get(name)
    const ensure = (type: string) => {
      if (entry === undefined) {
        entry = { help, type, lines: [] }
        byName.set(name, entry)
      }
      return entry
    }
    if (MetricState.isCounterState(metricState)) {
      ensure("counter").lines.push(`${name}${labels(tags)} ${number(metricState.count)}`)
    } else if (MetricState.isGaugeState(metricState)) {
      ensure("gauge").lines.push(`${name}${labels(tags)} ${number(metricState.value)}`)
    } else if (MetricState.isHistogramState(metricState)) {
      const target = ensure("histogram")
      for (const [boundary, count] of metricState.buckets) {
        target.lines.push(`${name}_bucket${labels(tags, [["le", number(boundary)]])} ${count}`)
      }
      // Effect's boundaries already end with +Inf; add it only if they ever stop doing so.
      if (metricState.buckets.at(-1)?.[0] !== Infinity) {
        target.lines.push(`${name}_bucket${labels(tags, [["le", "+Inf"]])} ${metricState.count}`)
      }
      target.lines.push(`${name}_sum${labels(tags)} ${metricState.sum}`)
      target.lines.push(`${name}_count${labels(tags)} ${metricState.count}`)
    }
  }
  return [...byName].map(([name, { help, type, lines }]) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${lines.join("\n")}\n`
  ).join("")
})
