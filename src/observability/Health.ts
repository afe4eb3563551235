import { Context, Effect, Layer, Metric, Ref } from "effect"
import { healthCheckOk, healthReady } from "./metrics.ts"

export type Dependency = "database" | "broker" | "lake"

export interface CheckState {
  readonly ok: boolean
  readonly since: string
  readonly error?: string
}

/**
 * What the program last saw of each outside system. Programs report after each operation, so
 * readiness reflects real traffic rather than a separate probe that could disagree with it.
 */
export class Health extends Context.Tag("Health")<Health, {
  readonly report: (dependency: Dependency, outcome: { ok: true } | { ok: false; error: string }) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<{ ready: boolean; checks: Readonly<Partial<Record<Dependency, CheckState>>> }>
}>() {}

const checkGauge = (dependency: Dependency) => healthCheckOk.pipe(Metric.tagged("dependency", dependency))

/**
 * `watched` are the dependencies readiness needs; until each has reported success, not ready.
 * The same state is exported as gauges, for alerts: `health_ready`, and `health_check_ok` per
 * dependency from its first report on (absent: not used yet, e.g. no lake write by an idle consumer).
 */
export const healthLayer = (watched: ReadonlyArray<Dependency>) =>
  Layer.effect(
    Health,
    Effect.gen(function*() {
      const state = yield* Ref.make<Partial<Record<Dependency, CheckState>>>({})
      const isReady = (checks: Partial<Record<Dependency, CheckState>>) => watched.every((d) => checks[d]?.ok === true)
      yield* Metric.set(healthReady, 0)
      return Health.of({
        report: (dependency, outcome) =>
          Ref.updateAndGet(state, (checks) => {
            const previous = checks[dependency]
            if (previous !== undefined && previous.ok === outcome.ok && previous.error === (outcome.ok ? undefined : outcome.error)) {
              return checks
            }
            const since = new Date().toISOString()
            return { ...checks, [dependency]: outcome.ok ? { ok: true, since } : { ok: false, since, error: outcome.error } }
          }).pipe(
            Effect.flatMap((checks) =>
              Effect.zipRight(Metric.set(checkGauge(dependency), outcome.ok ? 1 : 0), Metric.set(healthReady, isReady(checks) ? 1 : 0))
            )
          ),
        snapshot: Effect.map(Ref.get(state), (checks) => ({ ready: isReady(checks), checks }))
      })
    })
  )

/** Programs call this without caring whether health is being served (tests, --once). */
export const reportHealth = (dependency: Dependency, outcome: { ok: true } | { ok: false; error: string }) =>
  Effect.serviceOption(Health).pipe(
    Effect.flatMap((health) => health._tag === "Some" ? health.value.report(dependency, outcome) : Effect.void)
  )
