import type pg from "pg"
import { lakeCounts } from "./compare.ts"
import { historyRows } from "./history.ts"
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
  /**
   * Logical capture: the changes the run committed, which order_changes must reach; the orders
   * table must then hold exactly `committed` rows (deletes shrink it, so "at least" says nothing).
   * The early end from the programs' positions (a poll cursor) does not apply.
   */
  readonly expectedHistoryRows?: number
  /**
   * Logical capture: tables of `tables:` (the restaurants), each complete when its Delta table holds
   * exactly the rows PostgreSQL has and its history at least the changes the run committed.
   */
  readonly tables?: ReadonlyArray<DrainTable>
}

export interface DrainTable {
  readonly name: string
  readonly expectedRows: number
  readonly expectedHistoryRows: number
  /** Rows in its Delta table and its history now. */
  readonly counts: () => Promise<{ readonly rows: number; readonly history: number }>
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
  let last = { rows: -1, distinctIds: -1, history: -1, tables: "" }
  const tables = target.tables ?? []
  const tablesText = (counts: ReadonlyArray<{ readonly rows: number; readonly history: number }>) =>
    tables.map((t, i) => `${t.name} ${counts[i]!.rows} of ${t.expectedRows} rows, ${counts[i]!.history} of ${t.expectedHistoryRows} changes`).join("; ")
  const logical = target.expectedHistoryRows !== undefined
  let stableSince = Date.now()
  let lastLog = 0
  let lastPositions = 0
  let caughtUpChecks = 0
  while (Date.now() < deadline) {
    throwIfAborted(abort)
    // A file removed mid-read: ask again.
    const counts = await lakeCounts(target.lake)
      .then(async (c) => ({ ...c, history: logical ? await historyRows(target.lake) : 0, tableCounts: await Promise.all(tables.map((t) => t.counts())) }))
      .then((c) => ({ ...c, tables: JSON.stringify(c.tableCounts) }))
      .catch(() => null)
    if (counts !== null) {
      if (counts.rows !== last.rows || counts.distinctIds !== last.distinctIds || counts.history !== last.history || counts.tables !== last.tables) {
        last = counts
        stableSince = Date.now()
        caughtUpChecks = 0
      }
      const complete = logical
        ? counts.rows === target.committed && counts.distinctIds === target.committed && counts.history >= target.expectedHistoryRows! &&
          tables.every((t, i) => counts.tableCounts[i]!.rows === t.expectedRows && counts.tableCounts[i]!.history >= t.expectedHistoryRows)
        : counts.distinctIds >= target.committed
      if (complete && Date.now() - stableSince >= 3000) {
        drained = true
        break
      }
      // Logical capture: the lake unchanged for 20 s, short of what was committed, and the consumer
      // at the end of every partition (twice in a row): nothing more is coming.
      if (logical && !complete && Date.now() - stableSince >= 20_000 && Date.now() - lastPositions >= 3000) {
        lastPositions = Date.now()
        const positions = await pipelinePositions(target.pool, target.table, target.brokers, target.topic, target.env).catch(() => null)
        caughtUpChecks = positions?.consumerCaughtUp === true ? caughtUpChecks + 1 : 0
        if (caughtUpChecks >= 2) {
          settledShort = true
          break
        }
      }
      if (!logical && counts.distinctIds < target.committed && Date.now() - lastPositions >= 3000) {
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
        log(`draining: lake ${counts.rows} rows, ${counts.distinctIds} of ${target.committed} orders` +
          (logical ? `, order_changes ${counts.history} of ${target.expectedHistoryRows} changes` : "") +
          (tables.length > 0 ? `; ${tablesText(counts.tableCounts)}` : ""))
      }
    }
    await sleep(500, abort)
  }
  const lastTables = last.tables === "" ? "" : `; ${tablesText(JSON.parse(last.tables) as Array<{ rows: number; history: number }>)}`
  let dlqReady = target.injected.length === 0
  while (drained && !dlqReady && Date.now() < deadline) {
    throwIfAborted(abort)
    const check = await checkDeadLetters(target.brokers, target.dlqTopic, target.injected).catch(() => null)
    dlqReady = check !== null && check.missingKeys.length === 0
    if (!dlqReady) await sleep(1000, abort)
  }
  const outcome = { ms: Date.now() - started, timedOut: !drained || !dlqReady, settledShort }
  log(settledShort
    ? logical
      ? `the lake has not changed for 20 s and the consumer is at the end of the topic, yet it has ${last.rows} rows for ${target.committed} orders ` +
        `and order_changes ${last.history} of ${target.expectedHistoryRows} changes${lastTables} (after ${seconds(outcome.ms)})`
      : `the producer and the consumer passed everything, yet the lake has ${last.distinctIds} of ${target.committed} orders (after ${seconds(outcome.ms)})`
    : !drained
    ? `drain timed out after ${seconds(outcome.ms)} (lake ${last.distinctIds} of ${target.committed} orders` +
      `${logical ? `, order_changes ${last.history} of ${target.expectedHistoryRows} changes${lastTables}` : ""})`
    : !dlqReady
    ? `drain timed out after ${seconds(outcome.ms)} waiting for the DLQ`
    : `drained in ${seconds(outcome.ms)}`)
  return outcome
}
