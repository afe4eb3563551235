import type { ChaosBroker } from "./broker.ts"
import type { ChaosS3 } from "./s3.ts"
import type { GarbageInjector } from "./garbage.ts"
import type { Random } from "./random.ts"
import type { PgRestarter } from "./pgRestart.ts"
import { type ProgramName, type ProgramSupervisor } from "./supervisor.ts"
import { seconds, sleep, throwIfAborted } from "./timing.ts"

/** What the fault schedules share: the generation window's clock, the run's log and cancellation. */
export interface FaultContext {
  readonly genStart: number
  readonly durationMs: number
  readonly abort: AbortSignal
  readonly log: (line: string) => void
  readonly event: (what: string, details?: Record<string, unknown>) => void
}

/** A log line that says a program is streaming (not starting, not waiting for its group). */
export const progressLine: Record<ProgramName, RegExp> = {
  producer: /"message":"capture cycle".*"published":[1-9]/,
  consumer: /"message":"batch written"/
}

/** Logical capture's producer streams once it has said so (after the snapshot, or on resuming). */
export const logicalProducerProgress = /"message":"streaming changes"/

/** `count` moments spread over [from, to) of `spanMs`, one per equal slot, each at a random place in it. */
const spreadMoments = (rng: Random, count: number, spanMs: number, from: number, to: number): number[] => {
  const slot = ((to - from) * spanMs) / Math.max(1, count)
  return Array.from({ length: count }, (_, i) => from * spanMs + i * slot + rng.between(0, slot))
}

/** Sleeps until `at` ms into the generation window; false when the run is cancelled. */
const until = (ctx: FaultContext, at: number) => sleep(ctx.genStart + at - Date.now(), ctx.abort)

/**
 * `kills` SIGKILLs of one program, one per slot of the window, each followed by a restart after a
 * short random delay; some restarts (the last always) armed with a crash point.
 */
export const killProgram = async (
  ctx: FaultContext,
  supervisor: ProgramSupervisor,
  kills: number,
  crashPointChance: number,
  random: Random,
  injector: GarbageInjector,
  /** The crash points to arm restarts with; `last` (if given) arms the last restart, so a run is sure to pass it. */
  points: { readonly all: ReadonlyArray<string>; readonly last?: string },
  /** The line that says the program streams (default `progressLine`). */
  progress: RegExp = progressLine[supervisor.program]
): Promise<void> => {
  const name = supervisor.name
  const moments = spreadMoments(random, kills, ctx.durationMs, 0.05, 0.85)
  for (const [i, at] of moments.entries()) {
    if (!(await until(ctx, at))) return
    // Kill while it streams: a process still starting (or waiting for its consumer group, or for
    // the broker) gets up to 8 s to get going, then is killed anyway.
    if (await supervisor.waitForLog(progress, 8_000, ctx.abort)) await sleep(random.int(0, 400), ctx.abort)
    throwIfAborted(ctx.abort)
    const killed = await supervisor.kill()
    // The last restart is always armed: it restarts into the catch-up after a kill (late in the run,
    // the drain), where batches are sure to pass the point. A point fires on its n-th pass; the
    // dead-letter one passes only for batches with garbage, so it is armed for the first such batch
    // (and given one, below).
    const armed = i === moments.length - 1 || random.chance(crashPointChance)
    const point = !armed ? null : i === moments.length - 1 && points.last !== undefined ? points.last : random.pick(points.all)
    const crashAt = point === null ? null : `${point}:${point === "consumer.after-dead-letters" ? 1 : random.int(1, 2)}`
    const delay = random.int(200, 1500)
    ctx.log(`SIGKILL ${name} (pid ${killed?.pid ?? "-"}) at ${seconds(Date.now() - ctx.genStart)}; restart in ${delay} ms` +
      (crashAt === null ? "" : ` armed with FOP_CRASH_AT=${crashAt}`))
    ctx.event("kill", { program: name, pid: killed?.pid, incarnation: killed?.n, restart_in_ms: delay, crash_at: crashAt })
    await supervisor.restartLater(crashAt, delay)
    if (crashAt?.startsWith("consumer.after-dead-letters")) void injector.inject()
  }
}

/**
 * Broker restarts in the first half of the window (the stream must be seen to recover before the
 * end): SIGKILL, down 1-3 s, relaunch. Returns how long the broker was away each time.
 */
export const restartBroker = async (ctx: FaultContext, broker: ChaosBroker, restarts: number, random: Random): Promise<number[]> => {
  const away: number[] = []
  for (const at of spreadMoments(random, restarts, ctx.durationMs, 0.2, 0.45)) {
    if (!(await until(ctx, at))) break
    const down = random.int(1000, 3000)
    ctx.log(`SIGKILL broker (pid ${broker.pid()}) at ${seconds(Date.now() - ctx.genStart)}; restart after ${down} ms`)
    ctx.event("broker-kill", { pid: broker.pid() })
    const restarted = await broker.restart(down)
    away.push(restarted.downMs + restarted.startMs)
    ctx.log(`broker back (pid ${broker.pid()}) after ${seconds(restarted.downMs + restarted.startMs)}`)
    ctx.event("broker-started", { pid: broker.pid(), away_ms: restarted.downMs + restarted.startMs })
  }
  return away
}

/**
 * PostgreSQL restarts in the middle of the window, after the broker's: down 2-5 s, then back (see
 * pgRestart.ts for the two ways). Returns how long it was away each time.
 */
export const restartPostgres = async (ctx: FaultContext, restarter: PgRestarter, restarts: number, random: Random): Promise<number[]> => {
  const away: number[] = []
  for (const at of spreadMoments(random, restarts, ctx.durationMs, 0.45, 0.75)) {
    if (!(await until(ctx, at))) break
    const down = random.int(2000, 5000)
    ctx.log(`PostgreSQL ${restarter.via === "cluster" ? "cluster stop" : "connections cut (proxy)"} at ${seconds(Date.now() - ctx.genStart)}; back after ${down} ms`)
    ctx.event("pg-down", { via: restarter.via })
    const restarted = await restarter.restart(down)
    away.push(restarted.downMs + restarted.startMs)
    ctx.log(`PostgreSQL back after ${seconds(restarted.downMs + restarted.startMs)}`)
    ctx.event("pg-up", { via: restarter.via, away_ms: restarted.downMs + restarted.startMs })
  }
  return away
}

/** `count` bad messages at random moments of the window (a broker outage only delays them). */
export const injectGarbage = async (ctx: FaultContext, injector: GarbageInjector, count: number, random: Random): Promise<void> => {
  const moments = Array.from({ length: count }, () => random.between(0.1, 0.95) * ctx.durationMs).sort((a, b) => a - b)
  for (const at of moments) {
    if (!(await until(ctx, at))) return
    void injector.inject()
  }
  await injector.settled()
}

/**
 * S3 server restarts (the lake on object storage) in the middle of the window, away from the
 * broker's: SIGKILL mid-upload or mid-commit, down 1-3 s, relaunch on the same port and data.
 */
export const restartS3 = async (ctx: FaultContext, s3: ChaosS3, restarts: number, random: Random): Promise<number[]> => {
  const away: number[] = []
  for (const at of spreadMoments(random, restarts, ctx.durationMs, 0.5, 0.75)) {
    if (!(await until(ctx, at))) break
    const down = random.int(1000, 3000)
    ctx.log(`SIGKILL S3 server (pid ${s3.pid()}) at ${seconds(Date.now() - ctx.genStart)}; restart after ${down} ms`)
    ctx.event("s3-kill", { pid: s3.pid() })
    const restarted = await s3.restart(down)
    away.push(restarted.downMs + restarted.startMs)
    ctx.log(`S3 server back (pid ${s3.pid()}) after ${seconds(restarted.downMs + restarted.startMs)}`)
    ctx.event("s3-started", { pid: s3.pid(), away_ms: restarted.downMs + restarted.startMs })
  }
  return away
}
