import { Layer, type Metric } from "effect"
import { type Dependency, healthLayer } from "./Health.ts"
import { observabilityServer } from "./httpServer.ts"
import { progressLogger } from "./progress.ts"

export interface ObservabilityOptions {
  readonly program: "producer" | "consumer"
  /** From config; -1 serves nothing. */
  readonly port: number
  readonly progressInterval: number
  /** What readiness needs. */
  readonly watched: ReadonlyArray<Dependency>
  /** Counters for the progress line. */
  readonly progress: Readonly<Record<string, Metric.Metric.Counter<number>>>
  /** `--once` runs are over before anyone could scrape them: health is tracked, nothing served. */
  readonly once: boolean
}

/** Health tracking always; with a port, `/metrics` + `/health` and the periodic progress line. */
export const observabilityLayer = (options: ObservabilityOptions) => {
  const health = healthLayer(options.watched)
  if (options.once || options.port < 0) return health
  return Layer.mergeAll(
    observabilityServer(options.program, options.port, `observability.${options.program}_port`),
    progressLogger(options.progressInterval, options.progress)
  ).pipe(Layer.provideMerge(health))
}
