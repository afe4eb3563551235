import { Context, Effect, Layer, Ref } from "effect"

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

/** `watched` are the dependencies readiness needs; until each has reported success, not ready. */
export const healthLayer = (watched: ReadonlyArray<Dependency>) =>
  Layer.effect(
    Health,
    Effect.map(Ref.make<Partial<Record<Dependency, CheckState>>>({}), (state) =>
      Health.of({
        report: (dependency, outcome) =>
          Ref.update(state, (checks) => {
            const previous = checks[dependency]
            if (previous !== undefined && previous.ok === outcome.ok && previous.error === (outcome.ok ? undefined : outcome.error)) {
              return checks
            }
            const since = new Date().toISOString()
            return { ...checks, [dependency]: outcome.ok ? { ok: true, since } : { ok: false, since, error: outcome.error } }
          }),
        snapshot: Effect.map(Ref.get(state), (checks) => ({
          ready: watched.every((d) => checks[d]?.ok === true),
          checks
        }))
      }))
  )

/** Programs call this without caring whether health is being served (tests, --once). */
export const reportHealth = (dependency: Dependency, outcome: { ok: true } | { ok: false; error: string }) =>
  Effect.serviceOption(Health).pipe(
    Effect.flatMap((health) => health._tag === "Some" ? health.value.report(dependency, outcome) : Effect.void)
  )
