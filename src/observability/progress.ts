import { Effect, Layer, Metric } from "effect"

/**
 * One log line every `intervalSeconds`: each counter's total and its rate over the interval, so an
 * operator tailing the log sees the pipeline move (or stall) without a metrics stack.
 */
export const progressLogger = (intervalSeconds: number, counters: Readonly<Record<string, Metric.Metric.Counter<number>>>) =>
  Layer.scopedDiscard(Effect.gen(function*() {
    let previous: Record<string, number> = {}
    let previousAt = Date.now()
    const report = Effect.gen(function*() {
      const now = Date.now()
      const seconds = Math.max(0.001, (now - previousAt) / 1000)
      const fields: Record<string, number> = {}
      const current: Record<string, number> = {}
      for (const [name, counter] of Object.entries(counters)) {
        const { count } = yield* Metric.value(counter)
        current[name] = count
        fields[name] = count
        fields[`${name}_per_s`] = Math.round(((count - (previous[name] ?? 0)) / seconds) * 10) / 10
      }
      previous = current
      previousAt = now
      yield* Effect.logInfo("progress").pipe(Effect.annotateLogs(fields))
    })
    yield* report.pipe(Effect.delay(`${intervalSeconds} seconds`), Effect.forever, Effect.forkScoped)
  }))

