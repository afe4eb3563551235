import type { CapturedTableCheck } from "./capturedTableCheck.ts"
import type { LakeComparison } from "./compare.ts"
import type { LedgerOp } from "./changeLedger.ts"
import type { DeadLetterCheck, InjectedGarbage } from "./garbage.ts"
import type { HistoryCheck } from "./history.ts"
import type { LifecycleStats } from "./lifecycles.ts"
import type { OutageStats } from "./pgOutage.ts"
import type { RestaurantStats } from "./restaurants.ts"
import type { Incarnation } from "./supervisor.ts"

export interface ProgramKills {
  /** SIGKILLs from the supervisor plus crash points that fired. */
  readonly total: number
  readonly signal: number
  readonly crashPoints: number
  readonly starts: number
  /** The crash points that fired, in order. */
  readonly crashPointsHit: ReadonlyArray<string>
}

export interface ProgramStop {
  readonly code: number | null
  readonly signal: string | null
  readonly ms: number
  readonly timedOut: boolean
  readonly clean: boolean
}

export interface ChaosReport {
  readonly ok: boolean
  /** Why the run failed, one line each; empty when ok. */
  readonly failures: ReadonlyArray<string>
  readonly seed: number
  readonly roll: string
  readonly pg: string
  readonly brokers: string
  readonly durationS: number
  readonly capture: "poll" | "logical"
  /** Kept (with program logs, the broker log and the lake) when the run failed; null when removed. */
  readonly stateDir: string | null
  readonly orders: {
    /** Counted in PostgreSQL at the end, not by the generator. */
    readonly committed: number
    readonly generatorCommitted: number
    readonly rolledBackTransactions: number
    readonly rolledBackRows: number
    readonly lateCommits: number
    readonly lateRows: number
    readonly tieGroups: number
    readonly tieRows: number
  }
  /** Per process: `producer`, `consumer` (and `consumer-2`, ... with several consumers). */
  readonly kills: Readonly<Record<string, ProgramKills>>
  /** Processes that ended in a way nobody asked for (the programs should never exit on their own). */
  readonly unexpectedExits: ReadonlyArray<{ program: string } & Incarnation>
  readonly brokerRestarts: number
  readonly brokerDownMs: ReadonlyArray<number>
  /** PostgreSQL restarts done, how long it was away each time, and how (see pgRestart.ts). */
  readonly pgRestarts: number
  readonly pgDownMs: ReadonlyArray<number>
  readonly pgRestartVia: "cluster" | "proxy"
  /** Why the planned restarts were skipped (the cluster could not be restarted by this run), or null. */
  readonly pgRestartSkipped: string | null
  /** What the outages did to the run's own transactions (the generator's and the lifecycles'). */
  readonly outages: OutageStats
  /** Logical capture: the changes the run committed (its ledger); null in poll mode. */
  readonly changes: {
    readonly committed: Readonly<Record<LedgerOp, number>>
    readonly total: number
    /** Orders that ever existed (snapshot or inserted). */
    readonly ordersEver: number
    readonly deletedOrders: number
    readonly lifecycles: LifecycleStats
  } | null
  /** Logical capture: order_changes against the ledger and the final state; null in poll mode. */
  readonly history: HistoryCheck | null
  /**
   * Logical capture: the second table (`tables:`, the restaurants): what the run committed to it,
   * and its Delta table and history against PostgreSQL and that ledger; null in poll mode.
   */
  readonly secondTable: {
    readonly table: string
    readonly committed: Readonly<Record<LedgerOp, number>>
    readonly total: number
    readonly rowsEver: number
    readonly workload: RestaurantStats
    readonly check: CapturedTableCheck | null
  } | null
  /** Where the table was: `local`, or `s3` on the run's own S3 server. */
  readonly lakeStore: "local" | "s3"
  readonly s3Restarts: number
  readonly s3DownMs: ReadonlyArray<number>
  /** Answers to commits the programs' S3 proxy lost after the server applied them. */
  readonly s3LostCommitAnswers: number
  readonly garbage: {
    readonly injected: number
    readonly kinds: Readonly<Record<string, number>>
    readonly dlq: DeadLetterCheck | null
  }
  readonly lake: LakeComparison | null
  /** `settledShort`: ended early because both programs had passed everything and orders were still missing. */
  readonly drain: { readonly ms: number; readonly timedOut: boolean; readonly settledShort: boolean }
  readonly stop: Readonly<Partial<Record<string, ProgramStop>>>
  readonly wallMs: number
  readonly injectedGarbage: ReadonlyArray<InjectedGarbage>
}

/** The report's failure lines: every check that must hold for a run to pass. */
export const failuresOf = (
  report: Omit<ChaosReport, "ok" | "failures">,
  configuredKills: Readonly<Record<string, number>>,
  configuredRestarts: number,
  configuredS3Restarts: number,
  configuredPgRestarts = 0
): string[] => {
  const failures: string[] = []
  const lake = report.lake
  if (lake === null) failures.push("no comparison (the run did not get that far)")
  else {
    if (lake.missing > 0) failures.push(`${lake.missing} orders missing from the lake, e.g. ${lake.samples.missing.join(", ")}`)
    if (lake.duplicated > 0) failures.push(`${lake.duplicated} duplicated lake rows, e.g. order_id ${lake.samples.duplicated.join(", ")}`)
    if (lake.unexpected > 0) failures.push(`${lake.unexpected} lake orders not in PostgreSQL, e.g. ${lake.samples.unexpected.join(", ")}`)
    if (lake.mismatched > 0) failures.push(`${lake.mismatched} lake rows differ from PostgreSQL, e.g. ${JSON.stringify(lake.samples.mismatched[0])}`)
    if (lake.rolledBackInLake > 0) failures.push(`${lake.rolledBackInLake} rolled-back orders in the lake`)
    if (lake.wrongPartition > 0) failures.push(`${lake.wrongPartition} lake rows in the wrong date= partition`)
    if (lake.sourceSum !== lake.lakeSum) failures.push(`sum(amount): PostgreSQL ${lake.sourceSum}, lake ${lake.lakeSum}`)
  }
  const dlq = report.garbage.dlq
  if (dlq === null) failures.push("dead-letter topic not checked")
  else {
    if (dlq.missingKeys.length > 0) failures.push(`${dlq.missingKeys.length} injected bad messages not in the DLQ: ${dlq.missingKeys.join(", ")}`)
    if (dlq.wrongReason.length > 0) failures.push(`${dlq.wrongReason.length} dead letters with the wrong dlq-reason, e.g. ${JSON.stringify(dlq.wrongReason[0])}`)
    if (dlq.foreign.length > 0) failures.push(`${dlq.foreign.length} dead letters for messages nobody injected, e.g. ${JSON.stringify(dlq.foreign[0])}`)
  }
  for (const exit of report.unexpectedExits) {
    failures.push(`${exit.program} process ${exit.n} (pid ${exit.pid}) exited on its own: code ${exit.code}, signal ${exit.signal}`)
  }
  for (const [program, kills] of Object.entries(report.kills)) {
    const planned = configuredKills[program] ?? 0
    if (kills.signal < planned) failures.push(`${program} was SIGKILLed ${kills.signal} times, ${planned} planned`)
  }
  if (report.brokerRestarts < configuredRestarts) failures.push(`broker restarted ${report.brokerRestarts} times, ${configuredRestarts} planned`)
  if (report.pgRestarts < configuredPgRestarts) failures.push(`PostgreSQL restarted ${report.pgRestarts} times, ${configuredPgRestarts} planned`)
  const history = report.history
  if (report.capture === "logical") {
    if (history === null) failures.push("order_changes not checked")
    else {
      const h = history.samples
      if (history.repeated > 0) failures.push(`${history.repeated} changes twice in order_changes, e.g. ${h.repeated.slice(0, 3).join(", ")} (order@lsn/seq)`)
      if (history.countMismatches > 0) failures.push(`${history.countMismatches} orders whose changes in order_changes differ from those committed, e.g. ${JSON.stringify(h.countMismatches[0])}`)
      if (history.absentOrders > 0) failures.push(`${history.absentOrders} changed orders with no history, e.g. ${h.absentOrders.slice(0, 5).join(", ")}`)
      if (history.unknownOrders > 0) failures.push(`${history.unknownOrders} orders in order_changes that the run never committed, e.g. ${h.unknownOrders.slice(0, 5).join(", ")}`)
      if (history.lastStateMismatches > 0) failures.push(`${history.lastStateMismatches} orders whose last change is not their final state, e.g. ${JSON.stringify(h.lastStateMismatches[0])}`)
      for (const op of ["snapshot", "insert", "update", "delete"] as const) {
        if ((history.byOp[op] ?? 0) !== history.expectedByOp[op]) failures.push(`order_changes holds ${history.byOp[op] ?? 0} ${op} changes, ${history.expectedByOp[op]} committed`)
      }
    }
  }
  const second = report.secondTable
  if (second !== null) {
    const t = second.check
    if (t === null) failures.push(`${second.table} not checked`)
    else {
      const name = second.table
      if (t.missing > 0) failures.push(`${t.missing} ${name} rows missing from its Delta table, e.g. ${t.samples.missing.slice(0, 5).join(", ")}`)
      if (t.duplicated > 0) failures.push(`${t.duplicated} duplicated ${name} rows in its Delta table, e.g. ${t.samples.duplicated.slice(0, 5).join(", ")}`)
      if (t.unexpected > 0) failures.push(`${t.unexpected} ${name} rows in its Delta table not in PostgreSQL, e.g. ${t.samples.unexpected.slice(0, 5).join(", ")}`)
      if (t.mismatched > 0) failures.push(`${t.mismatched} ${name} rows differ from PostgreSQL, e.g. ${JSON.stringify(t.samples.mismatched[0])}`)
      if (t.wrongPartition > 0) failures.push(`${t.wrongPartition} ${name} rows in another partition than their opened_at's UTC date`)
      const h = t.history
      if (h.repeated > 0) failures.push(`${h.repeated} changes twice in ${name}'s history, e.g. ${t.samples.repeated.slice(0, 3).join(", ")} (lsn/seq)`)
      if (h.countMismatches > 0) failures.push(`${h.countMismatches} ${name} rows whose changes in the history differ from those committed, e.g. ${JSON.stringify(t.samples.countMismatches[0])}`)
      if (h.absentKeys > 0) failures.push(`${h.absentKeys} changed ${name} rows with no history`)
      if (h.unknownKeys > 0) failures.push(`${h.unknownKeys} ${name} keys in the history that the run never committed`)
      if (h.lastStateMismatches > 0) failures.push(`${h.lastStateMismatches} ${name} rows whose last change is not their final state, e.g. ${JSON.stringify(t.samples.lastStateMismatches[0])}`)
      for (const op of ["snapshot", "insert", "update", "delete"] as const) {
        if ((h.byOp[op] ?? 0) !== h.expectedByOp[op]) failures.push(`${name}'s history holds ${h.byOp[op] ?? 0} ${op} changes, ${h.expectedByOp[op]} committed`)
      }
    }
  }
  if (report.s3Restarts < configuredS3Restarts) failures.push(`S3 server restarted ${report.s3Restarts} times, ${configuredS3Restarts} planned`)
  if (report.drain.settledShort) failures.push("the pipeline had passed everything (nothing more was coming), yet the lake lacked some orders or changes")
  else if (report.drain.timedOut) failures.push("the lake (or the DLQ) did not catch up within the drain timeout")
  for (const program of Object.keys(report.kills)) {
    const stop = report.stop[program]
    if (stop === undefined) failures.push(`${program} was not stopped`)
    else if (!stop.clean) {
      failures.push(`${program} did not stop cleanly: ${stop.timedOut ? "still running after SIGTERM" : `exit code ${stop.code}, signal ${stop.signal}`}`)
    }
  }
  return failures
}

const pad = (text: string, width: number) => text + " ".repeat(Math.max(0, width - text.length))

const awayText = (downMs: ReadonlyArray<number>) =>
  downMs.length > 0 ? ` (away ${downMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(", ")})` : ""

const consumerKills = (kills: ChaosReport["kills"]) =>
  Object.entries(kills).filter(([name]) => name.startsWith("consumer")).map(([, k]) => k)

/** The table a person reads at the end of `npm run chaos`. */
export const formatSummary = (report: ChaosReport): string => {
  const lake = report.lake
  const dlq = report.garbage.dlq
  const k = report.kills
  const rows: Array<[string, string]> = [
    ...(report.changes === null ? [["orders inserted (committed)", `${report.orders.committed}`] as [string, string]] : [
      ["capture", "logical (replication slot)"] as [string, string],
      ["orders (ever / live at the end)", `${report.changes.ordersEver} / ${report.orders.committed} (${report.changes.deletedOrders} deleted)`] as [string, string],
      ["changes committed", `${report.changes.total}: ${report.changes.committed.snapshot} snapshot, ${report.changes.committed.insert} insert, ${report.changes.committed.update} update, ${report.changes.committed.delete} delete`] as [string, string],
      ["  lifecycles", `${report.changes.lifecycles.tracked} orders: ${report.changes.lifecycles.statusUpdates} status, ${report.changes.lifecycles.amountUpdates} amount, ${report.changes.lifecycles.deletes} deletes`] as [string, string],
      ["  multi-statement transactions", `${report.changes.lifecycles.multiTransactions} committed (insert+update+delete of one order, insert+update of another), ${report.changes.lifecycles.multiRolledBack} rolled back`] as [string, string],
      ["  large transaction", `${report.changes.lifecycles.bulkTransactions} × ${report.changes.lifecycles.bulkRows} rows updated at once`] as [string, string]
    ]),
    ["  late commits (held 1-5 s)", `${report.orders.lateCommits} transactions, ${report.orders.lateRows} orders`],
    ["  tie groups (one created_at)", `${report.orders.tieGroups} groups, ${report.orders.tieRows} orders`],
    ["rolled back", `${report.orders.rolledBackTransactions} transactions, ${report.orders.rolledBackRows} orders`],
    ...Object.entries(k).map(([program, kills]): [string, string] =>
      [`kills: ${program}`, `${kills.total} (${kills.signal} SIGKILL, ${kills.crashPoints} crash points${kills.crashPointsHit.length > 0 ? `: ${kills.crashPointsHit.join(", ")}` : ""})`]
    ),
    ["broker restarts (SIGKILL)", `${report.brokerRestarts}${awayText(report.brokerDownMs)}`],
    ["PostgreSQL restarts", report.pgRestartSkipped !== null
      ? `skipped (${report.pgRestartSkipped})`
      : `${report.pgRestarts}${report.pgRestarts > 0 ? ` via ${report.pgRestartVia === "cluster" ? "pg_ctlcluster stop/start" : "the run's proxy (connections and backends cut)"}` : ""}${awayText(report.pgDownMs)}`],
    ...(report.pgRestarts > 0
      ? [["  the run's transactions", `${report.outages.interrupted} cut before COMMIT, ${report.outages.unknownCommits} COMMITs unanswered (${report.outages.unknownCommitted} found committed)` +
        (report.changes === null ? "" : `; ${report.changes.lifecycles.retriedSteps} lifecycle steps run again, ${report.changes.lifecycles.settledByReading} settled by reading the row`)] as [string, string]]
      : []),
    ["lake", report.lakeStore === "s3" ? `on the run's S3 server, restarted ${report.s3Restarts} times${awayText(report.s3DownMs)}; ${report.s3LostCommitAnswers} answers to applied commits lost` : "local directory"],
    ["garbage injected", `${report.garbage.injected} (${Object.entries(report.garbage.kinds).map(([kind, n]) => `${n} ${kind}`).join(", ")})`],
    ["DLQ records", dlq === null ? "not checked" : `${dlq.records} (${dlq.matched} of ${report.garbage.injected} injected found, ${dlq.repeated} re-sent after a crash, ${dlq.wrongReason.length} wrong reason, ${dlq.foreign.length} foreign)`],
    ["lake rows / distinct ids", lake === null ? "-" : `${lake.lakeRows} / ${lake.lakeDistinctIds}`],
    ["missing", lake === null ? "-" : `${lake.missing}`],
    ["duplicated", lake === null ? "-" : `${lake.duplicated}`],
    ["unexpected (not in PostgreSQL)", lake === null ? "-" : `${lake.unexpected}`],
    ["values differing", lake === null ? "-" : `${lake.mismatched}`],
    ["sum(amount) PostgreSQL / lake", lake === null ? "-" : `${lake.sourceSum} / ${lake.lakeSum}`],
    ["lake files", lake === null ? "-" : `${lake.lakeFiles}`],
    ...(report.history === null ? [] : ((h: HistoryCheck): Array<[string, string]> => [
      ["order_changes rows", `${h.rows}: ${["snapshot", "insert", "update", "delete"].map((op) => `${h.byOp[op] ?? 0} ${op}`).join(", ")} (${h.orders} orders)`],
      ["  changes twice", `${h.repeated}`],
      ["  orders with other changes than committed", `${h.countMismatches} (${h.absentOrders} with none, ${h.unknownOrders} never committed)`],
      ["  last change not the final state", `${h.lastStateMismatches}`]
    ])(report.history)),
    ...(report.secondTable === null ? [] : ((t: NonNullable<ChaosReport["secondTable"]>): Array<[string, string]> => {
      const w = t.workload
      const c = t.check
      return [
        ["restaurants (second table)", `${t.rowsEver} rows ever; changes committed ${t.total}: ${t.committed.snapshot} snapshot, ${t.committed.insert} insert, ${t.committed.update} update, ${t.committed.delete} delete ` +
          `(${w.transactions} own transactions, ${w.rolledBack} rolled back, ${w.insertThenUpdate} insert+update in one, ${w.withOrders} with orders; ADD COLUMN at ${w.columnAddedAtMs === null ? "-" : `${(w.columnAddedAtMs / 1000).toFixed(1)} s`}, ${w.rowsWithAddedColumn} rows set it)`],
        ["  rows PostgreSQL / lake (files)", c === null ? "-" : `${c.sourceRows} / ${c.lakeRows} (${c.lakeFiles})`],
        ["  missing / duplicated / unexpected / differing", c === null ? "-" : `${c.missing} / ${c.duplicated} / ${c.unexpected} / ${c.mismatched} (${c.wrongPartition} in a wrong partition)`],
        ["  history rows", c === null ? "-" : `${c.history.rows}: ${["snapshot", "insert", "update", "delete"].map((op) => `${c.history.byOp[op] ?? 0} ${op}`).join(", ")} (${c.history.keys} rows)`],
        ["  changes twice / other than committed / last not final", c === null ? "-" : `${c.history.repeated} / ${c.history.countMismatches} (${c.history.absentKeys} with none, ${c.history.unknownKeys} never committed) / ${c.history.lastStateMismatches}`]
      ]
    })(report.secondTable)),
    ["drain after generation", `${(report.drain.ms / 1000).toFixed(1)} s${report.drain.settledShort ? " (ended: nothing more would come)" : report.drain.timedOut ? " (TIMED OUT)" : ""}`],
    ...Object.keys(k).map((p): [string, string] => {
      const s = report.stop[p]
      return [`stop ${p} (SIGTERM)`, s === undefined ? "not stopped" : `exit ${s.code ?? s.signal} in ${(s.ms / 1000).toFixed(1)} s${s.clean ? "" : " (NOT CLEAN)"}`]
    }),
    ["wall time", `${(report.wallMs / 1000).toFixed(1)} s (generation ${report.durationS} s)`],
    ["seed", `${report.seed} (replay: --seed ${report.seed})`],
    ["result", report.ok ? "PASS" : "FAIL"]
  ]
  const width = Math.max(...rows.map(([label]) => label.length)) + 2
  const lines = rows.map(([label, value]) => `  ${pad(label, width)}${value}`)
  const extra = [
    ...report.failures.map((f) => `  ! ${f}`),
    ...(report.stateDir === null ? [] : [`  state kept in ${report.stateDir} (program logs in logs/, lake in output/orders)`])
  ]
  const rule = "  (every generated row has created_at >= its transaction's start, as the capture requires: the default, or now() inside the same transaction for ties)"
  return [`chaos run ${report.roll}`, ...lines, rule, ...extra].join("\n")
}

/** The last line of the output: the numbers that matter, for scripts and CI logs. */
export const reportLine = (report: ChaosReport): string =>
  JSON.stringify({
    ok: report.ok,
    orders_inserted: report.orders.committed,
    rolled_back: report.orders.rolledBackRows,
    late_commits: report.orders.lateCommits,
    tie_groups: report.orders.tieGroups,
    kills: {
      producer: report.kills["producer"]?.total ?? 0,
      consumer: consumerKills(report.kills).reduce((n, k) => n + k.total, 0),
      via_crash_points: Object.values(report.kills).reduce((n, k) => n + k.crashPoints, 0)
    },
    consumers: consumerKills(report.kills).length,
    lake: report.lakeStore,
    capture: report.capture,
    broker_restarts: report.brokerRestarts,
    pg_restarts: report.pgRestarts,
    pg_restart_via: report.pgRestartSkipped === null ? report.pgRestartVia : `skipped: ${report.pgRestartSkipped}`,
    crash_points_hit: Object.values(report.kills).flatMap((k) => k.crashPointsHit),
    ...(report.changes === null ? {} : {
      orders_ever: report.changes.ordersEver,
      changes: report.changes.committed,
      history_rows: report.history?.rows ?? null,
      history_repeated: report.history?.repeated ?? null,
      history_count_mismatches: report.history?.countMismatches ?? null,
      history_last_state_mismatches: report.history?.lastStateMismatches ?? null
    }),
    ...(report.secondTable === null ? {} : {
      second_table: {
        changes: report.secondTable.committed,
        rows: report.secondTable.check?.sourceRows ?? null,
        history_rows: report.secondTable.check?.history.rows ?? null,
        missing: report.secondTable.check?.missing ?? null,
        duplicated: report.secondTable.check?.duplicated ?? null,
        unexpected: report.secondTable.check?.unexpected ?? null,
        mismatched: report.secondTable.check?.mismatched ?? null,
        history_repeated: report.secondTable.check?.history.repeated ?? null,
        history_last_state_mismatches: report.secondTable.check?.history.lastStateMismatches ?? null
      }
    }),
    s3_restarts: report.s3Restarts,
    s3_lost_commit_answers: report.s3LostCommitAnswers,
    garbage_injected: report.garbage.injected,
    dlq_records: report.garbage.dlq?.records ?? null,
    dlq_matched: report.garbage.dlq?.matched ?? null,
    missing: report.lake?.missing ?? null,
    duplicated: report.lake?.duplicated ?? null,
    unexpected: report.lake?.unexpected ?? null,
    mismatched: report.lake?.mismatched ?? null,
    lake_files: report.lake?.lakeFiles ?? null,
    wall_s: Math.round(report.wallMs / 100) / 10,
    seed: report.seed,
    state_dir: report.stateDir,
    failures: report.failures
  })
