import type pg from "pg"
import { lakeCounts } from "./compare.ts"
import { checkDeadLetters, type InjectedGarbage } from "./garbage.ts"
import { pipelinePositions } from "./positions.ts"
import { seconds, sleep, throwIfAborted } from "./timing.ts"

export interface DrainOutcome {
  readonly ms: number
  readonly timedOut: boolean
  /** Ended early: both programs had passed everything, and orders were still missing from the lake. */
  readonly settledShort: boolean
}

export interface DrainTarget {
  readonly pool: pg.Pool
  readonly table: string
  readonly committed: number
  readonly lake: string
  readonly brokers: string
  readonly topic: string
  readonly dlqTopic: string
  readonly injected: ReadonlyArray<InjectedGarbage>
  readonly env: Readonly<Record<string, string>>
}

/**
 * Waits after generation until the lake holds every committed order and has not changed for 3 s,
 * then until every injected bad message is in the DLQ. Gives up early when the pipeline's own
 * positions say it has passed everything (what is missing then stays missing), else at `timeoutMs`.
 */
export const waitForDrain = async (
  target: DrainTarget,
  timeoutMs: number,
  abort: AbortSignal,
  log: (line: string) => void
): Promise<DrainOutcome> => {
  const started = Date.now()
  const deadline = started + timeoutMs
  let drained = false
  let settledShort = false
  let last = { rows: -1, distinctIds: -1 }
  let stableSince = Date.now()
  let lastLog = 0
  let lastPositions = 0
  let caughtUpChecks = 0
  while (Date.now() < deadline) {
    throwIfAborted(abort)
    const counts = await lakeCounts(target.lake).catch(() => null) // a file removed mid-read: ask again
    if (counts !== null) {
      if (counts.rows !== last.rows || counts.distinctIds !== last.distinctIds) {
        last = counts
        stableSince = Date.now()
        caughtUpChecks = 0
      }
      if (counts.distinctIds >= target.committed && Date.now() - stableSince >= 3000) {
        drained = true
        break
      }
      if (counts.distinctIds < target.committed && Date.now() - lastPositions >= 3000) {
        lastPositions = Date.now()
        const positions = await pipelinePositions(target.pool, target.table, target.brokers, target.topic, target.env)
          .catch(() => null)
        // Twice in a row with an unchanged lake: not a moment between a checkpoint and its files.
        caughtUpChecks = positions?.producerCaughtUp === true && positions.consumerCaughtUp ? caughtUpChecks + 1 : 0
        if (caughtUpChecks >= 2) {
          settledShort = true
          break
        }
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now()
        log(`draining: lake ${counts.rows} rows, ${counts.distinctIds} of ${target.committed} orders`)
      }
    }
    await sleep(500, abort)
  }
  let dlqReady = target.injected.length === 0
  while (drained && !dlqReady && Date.now() < deadline) {
    throwIfAborted(abort)
    const check = await checkDeadLetters(target.brokers, target.dlqTopic, target.injected).catch(() => null)
    dlqReady = check !== null && check.missingKeys.length === 0
    if (!dlqReady) await sleep(1000, abort)
  }
  const outcome = { ms: Date.now() - started, timedOut: !drained || !dlqReady, settledShort }
  log(settledShort
    ? `the producer and the consumer passed everything, yet the lake has ${last.distinctIds} of ${target.committed} orders (after ${seconds(outcome.ms)})`
    : !drained
    ? `drain timed out after ${seconds(outcome.ms)} (lake ${last.distinctIds} of ${target.committed} orders)`
    : !dlqReady
    ? `drain timed out after ${seconds(outcome.ms)} waiting for the DLQ`
    : `drained in ${seconds(outcome.ms)}`)
  return outcome
}
