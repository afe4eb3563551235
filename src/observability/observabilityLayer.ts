import { Layer, type Metric } from "effect"
import { type Dependency, healthLayer } from "./Health.ts"
import { observabilityServer, type ServerAccess } from "./httpServer.ts"
import { registerDeadLetterReasons } from "./metrics.ts"
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
  readonly access?: ServerAccess
}

/**
 * Health tracking always (for the consumer also a dead-letter series per reason, at 0); with a port,
 * `/metrics` + `/health` and the periodic progress line.
 */
export const observabilityLayer = (options: ObservabilityOptions) => {
  const health = options.program === "consumer"
    ? Layer.merge(healthLayer(options.watched), Layer.effectDiscard(registerDeadLetterReasons))
    : healthLayer(options.watched)
  if (options.once || options.port < 0) return health
  return Layer.mergeAll(
    observabilityServer(options.program, options.port, `observability.${options.program}_port`, options.access),
    progressLogger(options.progressInterval, options.progress)
  ).pipe(Layer.provideMerge(health))
}
