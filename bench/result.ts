/** The shape of bench/results/*.json, and the checks a result must pass to be believable. */
import type { ProfileSummary } from "./profile.ts"
import type { BackfillRun } from "./scenarios/backfill.ts"
import type { CaptureResult } from "./scenarios/capture.ts"
import type { CeilingResult } from "./scenarios/ceiling.ts"
import type { LatencyStep } from "./scenarios/latency.ts"
import type { NativeResult } from "./scenarios/native.ts"
import type { ScaleResult } from "./scenarios/scale.ts"
import type { TablesResult } from "./scenarios/tables.ts"
import type { TrickleResult } from "./scenarios/trickle.ts"
import type { MachineFacts } from "./stack.ts"

export const RESULT_SCHEMA = "food-orders-bench/1"

export interface SteadyResult {
  readonly producer: "ours" | "reference"
  /** Our producer's STREAMING_BATCH_INTERVAL, or the reference poller's period (s). */
  readonly pollSeconds: number
  /** How the producer learns of new orders. */
  readonly wakeUp: string
  readonly detection: string
  readonly steps: ReadonlyArray<LatencyStep>
}

export interface BackfillResult {
  readonly rows: number
  readonly repetitions: number
  readonly runs: ReadonlyArray<BackfillRun>
  /** Medians over the runs. */
  readonly median: {
    readonly endToEndRowsPerS: number
    readonly pipelineRowsPerS: number
    readonly capturePublishRowsPerS: number
    readonly consumeWriteRowsPerS: number
    readonly consumeWriteBusyRowsPerS: number
    readonly producerPeakRssMiB: number
    readonly consumerPeakRssMiB: number
    readonly avgFileRows: number
    readonly avgFileBytes: number
    readonly files: number
  }
}

export interface Target {
  readonly name: string
  readonly target: string
  readonly actual: string
  readonly met: boolean | null
  readonly note?: string
}

export interface Ratio {
  readonly what: string
  readonly ours: number | null
  readonly baseline: number | null
  readonly baselineName: string
  /** ours / baseline for rates; baseline / ours for latencies (so > 1 means we are better). */
  readonly ratio: number | null
  readonly better: "higher" | "lower"
}

export interface BenchResult {
  readonly schema: typeof RESULT_SCHEMA
  readonly mode: "smoke" | "quick" | "full"
  readonly startedAt: string
  readonly finishedAt: string
  readonly durationS: number
  readonly machine: MachineFacts & { readonly loadAverageAtEnd: ReadonlyArray<number> }
  readonly stack: { readonly source: "env" | "local"; readonly kafkaBrokers: string; readonly pgUrl: string }
  readonly settings: Record<string, unknown>
  readonly scenarios: {
    backfill?: BackfillResult
    native?: NativeResult
    steady?: SteadyResult
    ceiling?: CeilingResult
    reference?: SteadyResult
    trickle?: TrickleResult
    /** The lake on S3 against local disk, 1 against 3 consumers (added in the same schema: absent from older results). */
    scale?: ScaleResult
    /** capture.mode poll against logical (added in the same schema: absent from older results). */
    capture?: CaptureResult
    /** The orders table alone against it with two tables beside it (added in the same schema: absent from older results). */
    tables?: TablesResult
  }
  readonly ratios: ReadonlyArray<Ratio>
  readonly targets: ReadonlyArray<Target>
  readonly profiles: ReadonlyArray<ProfileSummary & { readonly program: string }>
  /** The code each scenario ran (programs start fresh per scenario; the tree may move during a long run). */
  readonly codeVersions?: Readonly<Record<string, string>>
  readonly error?: string
}

/**
 * What must hold for a result to be believable (no timing: the machine is shared). Returns the
 * problems found; empty when sane. `expected` lists the scenarios the run was asked for.
 */
export const resultProblems = (result: BenchResult, expected: ReadonlyArray<keyof BenchResult["scenarios"]>): Array<string> => {
  const problems: Array<string> = []
  if (result.schema !== RESULT_SCHEMA) problems.push(`schema is ${String(result.schema)}`)
  if (result.error !== undefined) problems.push(`the run failed: ${result.error}`)
  if (!(result.machine.cores > 0) || !result.machine.node) problems.push("machine facts are missing")
  for (const name of expected) if (result.scenarios[name] === undefined) problems.push(`scenario ${name} is missing`)
  const { backfill, native, steady, ceiling, reference, trickle } = result.scenarios
  if (backfill !== undefined) {
    if (backfill.runs.length === 0) problems.push("backfill: no runs")
    for (const [i, run] of backfill.runs.entries()) {
      if (run.lakeRows !== run.rows) problems.push(`backfill run ${i + 1}: ${run.lakeRows} rows in the lake, ${run.rows} in PostgreSQL`)
      if (run.distinctIds !== run.rows) problems.push(`backfill run ${i + 1}: ${run.distinctIds} distinct order_ids for ${run.rows} rows`)
      if (!(run.endToEndRowsPerS > 0)) problems.push(`backfill run ${i + 1}: no end-to-end rate`)
      if (!(run.files.count > 0)) problems.push(`backfill run ${i + 1}: no lake files`)
      if (!(run.producer.peakRssMiB !== null && run.producer.peakRssMiB > 0)) problems.push(`backfill run ${i + 1}: no producer peak RSS`)
      if (!(run.consumer.peakRssMiB !== null && run.consumer.peakRssMiB > 0)) problems.push(`backfill run ${i + 1}: no consumer peak RSS`)
    }
  }
  if (native !== undefined) {
    if (native.pgCopy === undefined || native.pgCopy.runs.some((r) => r.rows !== native.rows)) problems.push("native: psql COPY did not return every row")
    if (native.copyToKcat !== undefined && native.copyToKcat.runs.some((r) => r.rows !== native.rows)) problems.push("native: COPY | kcat -P did not publish every row")
    if (native.kcatConsume !== undefined && native.kcatConsume.runs.some((r) => r.rows !== native.rows)) problems.push("native: kcat -C did not read every row")
    if (native.skipped === undefined && native.copyToKcat === undefined) problems.push("native: kcat figures missing without a reason")
    if (native.kafkajsPublish === undefined || native.kafkajsPublish.runs.some((r) => r.rows !== native.kafkajsRows)) problems.push("native: kafkajs publish did not send every row")
    if (native.kafkajsConsume === undefined || native.kafkajsConsume.runs.some((r) => r.rows !== native.kafkajsRows)) problems.push("native: kafkajs consume did not read every row")
  }
  for (const [name, latency] of [["steady", steady], ["reference", reference]] as const) {
    if (latency === undefined) continue
    if (latency.steps.length === 0) problems.push(`${name}: no steps`)
    for (const step of latency.steps) {
      if (!(step.inserted > 0)) problems.push(`${name} ${step.label}: nothing inserted`)
      if (step.missing !== 0) problems.push(`${name} ${step.label}: ${step.missing} orders never reached the lake`)
      if (step.duplicates !== 0) problems.push(`${name} ${step.label}: ${step.duplicates} orders in the lake twice`)
      if (step.lakeRows !== step.inserted) problems.push(`${name} ${step.label}: ${step.lakeRows} lake rows for ${step.inserted} inserted`)
      if (!(step.latencyMs.count === step.inserted)) problems.push(`${name} ${step.label}: latency for ${step.latencyMs.count} of ${step.inserted} orders`)
      if (!(step.latencyMs.p50 >= 0 && step.latencyMs.p50 <= step.latencyMs.p99 && step.latencyMs.p99 <= step.latencyMs.max)) {
        problems.push(`${name} ${step.label}: latency percentiles out of order ${JSON.stringify(step.latencyMs)}`)
      }
    }
  }
  if (ceiling !== undefined) {
    if (ceiling.steps.length === 0) problems.push("ceiling: no steps")
    for (const step of ceiling.steps) {
      if (!(step.achievedInsertRate > 0)) problems.push(`ceiling ${step.rate}/s: nothing inserted`)
      if (step.drainS === null) problems.push(`ceiling ${step.rate}/s: the backlog did not drain`)
    }
  }
  if (trickle !== undefined) {
    if (!(trickle.inserted > 0)) problems.push("trickle: nothing inserted")
    if (trickle.missing !== 0) problems.push(`trickle: ${trickle.missing} orders never reached a table version`)
    if (trickle.latencyMs.count !== trickle.inserted) problems.push(`trickle: latency for ${trickle.latencyMs.count} of ${trickle.inserted} orders`)
    if (trickle.samples.length === 0) problems.push("trickle: no samples")
    if (trickle.count === null) problems.push("trickle: no DuckDB count")
    else if (trickle.count.tableRows !== trickle.count.oneFileRows) {
      problems.push(`trickle: count(*) ${trickle.count.tableRows} over the table's files, ${trickle.count.oneFileRows} over the one file`)
    } else if (trickle.count.tableRows !== trickle.allInserted) {
      problems.push(`trickle: the table counts ${trickle.count.tableRows} rows, ${trickle.allInserted} were inserted (warm-up included)`)
    }
  }
  const scale = result.scenarios.scale
  if (scale !== undefined) {
    if (scale.backfill.length === 0) problems.push("scale: no backfill runs")
    for (const run of scale.backfill) {
      const name = `scale ${run.store} x${run.consumers}`
      if (run.lake.rows !== run.rows) problems.push(`${name}: ${run.lake.rows} rows in the lake, ${run.rows} in PostgreSQL`)
      if (run.lake.distinctIds !== run.rows) problems.push(`${name}: ${run.lake.distinctIds} distinct order_ids for ${run.rows} rows`)
      if (!(run.endToEndRowsPerS > 0)) problems.push(`${name}: no end-to-end rate`)
      if (!(run.files.streamed > 0)) problems.push(`${name}: no lake files`)
      if (!(run.consumer.peakRssMiBMax > 0)) problems.push(`${name}: no consumer peak RSS`)
      if (run.consumer.each.length !== run.consumers) problems.push(`${name}: figures for ${run.consumer.each.length} consumers`)
    }
    if (scale.latency.length === 0) problems.push("scale: no latency runs")
    for (const run of scale.latency) {
      const name = `scale latency ${run.store}`
      if (!(run.inserted > 0)) problems.push(`${name}: nothing inserted`)
      if (run.missing !== 0) problems.push(`${name}: ${run.missing} orders never reached the table`)
      if (run.duplicates !== 0) problems.push(`${name}: ${run.duplicates} orders in the table twice`)
      if (run.latencyMs.count !== run.inserted) problems.push(`${name}: latency for ${run.latencyMs.count} of ${run.inserted} orders`)
    }
  }
  const capture = result.scenarios.capture
  if (capture !== undefined) {
    if (capture.latency.length === 0 && capture.backfill.length === 0) problems.push("capture: no runs")
    for (const run of capture.latency) {
      const name = `capture latency ${run.mode}/${run.load}`
      if (!(run.inserted > 0)) problems.push(`${name}: nothing inserted`)
      if (run.missingInserts !== 0) problems.push(`${name}: ${run.missingInserts} inserted orders never reached the table`)
      if (run.insertLatencyMs.count !== run.inserted) problems.push(`${name}: latency for ${run.insertLatencyMs.count} of ${run.inserted} orders`)
      if (run.load === "mix" && !(run.updated > 0)) problems.push(`${name}: nothing updated`)
      if (run.mode === "logical") {
        if (run.missingUpdates !== 0) problems.push(`${name}: ${run.missingUpdates} of ${run.updated} updated rows never reached the table`)
        if (!run.state.equal) problems.push(`${name}: the orders table differs from PostgreSQL ${JSON.stringify(run.state)}`)
      } else if (run.state.lake.rows !== run.state.source.rows || run.state.lake.distinctIds !== run.state.source.rows) {
        problems.push(`${name}: ${run.state.lake.rows} rows (${run.state.lake.distinctIds} distinct) in the table, ${run.state.source.rows} in PostgreSQL`)
      }
    }
    for (const run of capture.backfill) {
      const name = `capture backfill ${run.mode} (round ${run.round})`
      if (run.lake.rows !== run.rows || run.lake.distinctIds !== run.rows) problems.push(`${name}: ${run.lake.rows} rows (${run.lake.distinctIds} distinct) in the table, ${run.rows} in PostgreSQL`)
      if (!(run.endToEndRowsPerS > 0)) problems.push(`${name}: no end-to-end rate`)
      if (!(run.producer.peakRssMiB !== null && run.producer.peakRssMiB > 0)) problems.push(`${name}: no producer peak RSS`)
      if (!(run.postgres.backends.length > 0)) problems.push(`${name}: no PostgreSQL backend sampled`)
    }
    if (capture.slots.left.length > 0) problems.push(`capture: replication slots left behind: ${capture.slots.left.join(", ")}`)
  }
  const tables = result.scenarios.tables
  if (tables !== undefined) {
    if (tables.backfill.length === 0 && tables.latency.length === 0) problems.push("tables: no runs")
    for (const run of tables.backfill) {
      for (const t of run.tables) {
        if (t.lakeRows !== t.rows) problems.push(`tables backfill ${run.setup} (round ${run.round}): ${t.lakeRows} rows in ${t.table}'s Delta table, ${t.rows} in PostgreSQL`)
      }
      if (run.tables.length !== (run.setup === "orders" ? 1 : 3)) problems.push(`tables backfill ${run.setup}: ${run.tables.length} tables followed`)
      if (!(run.endToEndRowsPerS > 0)) problems.push(`tables backfill ${run.setup} (round ${run.round}): no end-to-end rate`)
      if (!(run.producer.peakRssMiB !== null && run.producer.peakRssMiB > 0)) problems.push(`tables backfill ${run.setup}: no producer peak RSS`)
      if (!(run.consumer.peakRssMiB !== null && run.consumer.peakRssMiB > 0)) problems.push(`tables backfill ${run.setup}: no consumer peak RSS`)
    }
    for (const run of tables.latency) {
      for (const t of run.tables) {
        const name = `tables latency ${run.setup}/${t.table}`
        if (!(t.inserted > 0 && t.updated > 0)) problems.push(`${name}: ${t.inserted} inserted, ${t.updated} updated`)
        if (t.missing !== 0) problems.push(`${name}: ${t.missing} changes never reached the table`)
        if (t.latencyMs.count !== t.inserted + t.updated) problems.push(`${name}: latency for ${t.latencyMs.count} of ${t.inserted + t.updated} changes`)
        if (t.lakeRows !== t.sourceRows) problems.push(`${name}: ${t.lakeRows} rows in the Delta table, ${t.sourceRows} in PostgreSQL`)
      }
    }
    if (tables.slots.left.length > 0) problems.push(`tables: replication slots left behind: ${tables.slots.left.join(", ")}`)
  }
  if (result.targets.length === 0) problems.push("no targets evaluated")
  return problems
}
