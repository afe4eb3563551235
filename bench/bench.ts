/**
 * `npm run bench`: the pipeline against a real PostgreSQL and Kafka. See `--help` and bench/README.md.
 * Everything started here is stopped at the end, on failure and on Ctrl-C (bench/cleanup.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { loadavg } from "node:os"
import { dirname, join } from "node:path"
import { buildPrograms, programNodeOptions } from "../scripts/programs.ts"
import { repoRoot } from "../scripts/stack/paths.ts"
import { installSignalHandlers, runAll } from "./cleanup.ts"
import { createTable, dropTable } from "./database.ts"
import { startGenerator } from "./generatorClient.ts"
import { openDuckDb } from "./lakeWatcher.ts"
import { type BenchOptions, parseOptions, usage } from "./options.ts"
import { assertRunning, createRollTopics, newRoll, type Pipeline, startPipeline } from "./pipeline.ts"
import { readMachineCpu } from "./procStats.ts"
import { pipelineSettings } from "./pipelineSettings.ts"
import { summariseProfiles } from "./profile.ts"
import { evaluateRatios, evaluateTargets, renderMarkdown } from "./report.ts"
import { type BackfillResult, type BenchResult, RESULT_SCHEMA, resultProblems, type SteadyResult } from "./result.ts"
import { type BackfillRun, prepareBackfillTable, runBackfill } from "./scenarios/backfill.ts"
import { runCapture } from "./scenarios/capture.ts"
import { runCeiling } from "./scenarios/ceiling.ts"
import { analyseSteps, type LatencyStepOptions, readKafkaTimestamps, runLatencyStep } from "./scenarios/latency.ts"
import { runNative } from "./scenarios/native.ts"
import { runScale } from "./scenarios/scale.ts"
import { runTables } from "./scenarios/tables.ts"
import { runTrickle } from "./scenarios/trickle.ts"
import { codeVersion, kcatVersion, machineFacts, redactUrl, resolveStack, type Stack } from "./stack.ts"
import { median, waitUntil } from "./stats.ts"

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

const stamp = (date: Date) => date.toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-")

type Scenarios = BenchResult["scenarios"]
type Profiles = Array<BenchResult["profiles"][number]>

const detectionNote = (pollMs: number) =>
  `Detection: inotify (fs.watch on each date directory) with a ${pollMs} ms directory scan as a fallback; ` +
  "the benchmark's own event loop adds its delay, which the ctime column (set by the rename itself, ~4 ms kernel clock) does not have."

const backfillScenario = async (stack: Stack, options: BenchOptions, scenarios: Scenarios, profiles: Profiles, profileRoot: string | null) => {
  const duck = await openDuckDb()
  const { roll, loadSeconds } = await prepareBackfillTable(stack, { ...options.backfill, interval: options.interval })
  const runs: Array<BackfillRun> = []
  if (options.only.has("backfill")) {
    for (let rep = 1; rep <= options.backfill.repetitions; rep++) {
      const runRoll = rep === 1 ? roll : newRoll(stack, "bf", roll.table)
      const profileDir = profileRoot === null ? undefined : join(profileRoot, `backfill-${rep}`)
      say(`backfill ${rep}/${options.backfill.repetitions}: ${options.backfill.rows} orders, producer and consumer starting`)
      const run = await runBackfill(stack, runRoll, loadSeconds, {
        ...options.backfill,
        interval: options.interval,
        ...(profileDir === undefined ? {} : { cpuProfileDir: profileDir })
      }, duck, readMachineCpu)
      runs.push(run)
      say(`backfill ${rep}: ${run.endToEndRowsPerS}/s end to end (${run.endToEndSeconds} s; without start-up ${run.pipelineRowsPerS}/s); ` +
        `capture+publish ${run.capturePublish.rowsPerS}/s, consume+write ${run.consumeWrite.rowsPerS}/s; ${run.files.count} files of ${run.files.avgRows} rows; ` +
        `peak RSS producer ${run.producer.peakRssMiB} MiB, consumer ${run.consumer.peakRssMiB} MiB`)
      if (profileDir !== undefined) profiles.push(...summariseProfiles(profileDir).map((p) => ({ ...p, program: `${p.program} (run ${rep})` })))
    }
    const m = (f: (r: BackfillRun) => number | null) => median(runs.map((r) => f(r) ?? NaN))
    scenarios.backfill = {
      rows: options.backfill.rows,
      repetitions: runs.length,
      runs,
      median: {
        endToEndRowsPerS: m((r) => r.endToEndRowsPerS),
        pipelineRowsPerS: m((r) => r.pipelineRowsPerS),
        capturePublishRowsPerS: m((r) => r.capturePublish.rowsPerS),
        consumeWriteRowsPerS: m((r) => r.consumeWrite.rowsPerS),
        consumeWriteBusyRowsPerS: m((r) => r.consumeWrite.busyRowsPerS),
        producerPeakRssMiB: m((r) => r.producer.peakRssMiB),
        consumerPeakRssMiB: m((r) => r.consumer.peakRssMiB),
        avgFileRows: m((r) => r.files.avgRows),
        avgFileBytes: m((r) => r.files.avgBytes),
        files: m((r) => r.files.count)
      }
    } satisfies BackfillResult
  }
  if (options.only.has("native")) {
    say(`native baselines: the same ${options.backfill.rows} orders, ${options.native.repetitions} repetition(s)`)
    scenarios.native = await runNative(stack, roll, options.backfill.rows, options.native.repetitions, options.native.kafkajsRows, kcatVersion())
  }
  await dropTable(stack.pgUrl, roll.table)
  duck.close()
}

/** Starts a pipeline on a fresh empty table with the generator, warmed up: a few orders went all the way through. */
const startLoadedPipeline = async (
  stack: Stack,
  prefix: string,
  start: (roll: ReturnType<typeof newRoll>) => Pipeline,
  warmupTimeoutMs: number
) => {
  const roll = newRoll(stack, prefix)
  await createTable(stack.pgUrl, roll.table, true)
  await createRollTopics(stack, roll)
  const pipeline = start(roll)
  const generator = await startGenerator(stack.pgUrl, roll.table)
  // Warm-up: connections, JIT, the consumer's group join; then every later order is measured warm.
  await generator.run("warm-up", 200, 1_000, 20)
  const ok = await waitUntil(() => {
    assertRunning(pipeline)
    return pipeline.lake.messages() >= generator.committed()
  }, warmupTimeoutMs, 50)
  if (!ok) throw new Error(`${prefix}: the warm-up orders did not reach the lake within ${warmupTimeoutMs / 1000} s`)
  return { roll, pipeline, generator }
}

const benchOverrides = (options: BenchOptions): Record<string, string> => ({
  OBSERVABILITY_PRODUCER_PORT: "0",
  OBSERVABILITY_CONSUMER_PORT: "0",
  ...(options.interval === null ? {} : { STREAMING_BATCH_INTERVAL: String(options.interval) })
})

const effectiveInterval = (options: BenchOptions) => pipelineSettings(benchOverrides(options)).batchIntervalS

const latencySteps = (
  prefix: string,
  config: { rates: ReadonlyArray<number>; stepMs: number; tickMs: number; drainTimeoutMs: number }
): Array<LatencyStepOptions> =>
  config.rates.map((rate) => ({ label: `${prefix}-${rate}`, rate, durationMs: config.stepMs, tickMs: config.tickMs, drainTimeoutMs: config.drainTimeoutMs }))

const steadyAndCeiling = async (stack: Stack, options: BenchOptions, scenarios: Scenarios, profiles: Profiles, profileRoot: string | null) => {
  const profileDir = profileRoot === null ? undefined : join(profileRoot, "steady")
  const duck = await openDuckDb()
  const { roll, pipeline, generator } = await startLoadedPipeline(stack, "st", (r) =>
    startPipeline(stack, r, {
      label: "steady",
      interval: options.interval,
      producer: "ours",
      ...(profileDir === undefined ? {} : { cpuProfileDir: profileDir })
    }), 120_000)
  if (options.only.has("steady")) {
    const raw = []
    for (const step of latencySteps("steady", options.steady)) {
      say(`steady: ${step.rate} orders/s for ${step.durationMs / 1000} s`)
      raw.push(await runLatencyStep(pipeline, generator, step))
    }
    const stamps = await readKafkaTimestamps(stack.kafkaBrokers, roll.topic)
    const steps = await analyseSteps(pipeline, raw, duck, stamps)
    for (const s of steps) say(`steady ${s.rate}/s: p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms, max ${s.latencyMs.max} ms; ${s.files} files; missing ${s.missing}`)
    const settings = pipelineSettings(benchOverrides(options))
    scenarios.steady = {
      producer: "ours",
      pollSeconds: settings.batchIntervalS,
      wakeUp: settings.notifyTrigger
        ? `wakes on NOTIFY (statement trigger from scripts/stack/sql.ts), polls every ${settings.batchIntervalS} s as a fallback`
        : `polls every ${settings.batchIntervalS} s (no notify trigger in the DDL)`,
      detection: detectionNote(pipeline.lake.pollMs), steps } satisfies SteadyResult
  }
  if (options.only.has("ceiling")) {
    say(`ceiling: rates ${options.ceiling.rates.join(", ")} orders/s, ${options.ceiling.stepMs / 1000} s each`)
    scenarios.ceiling = await runCeiling(stack, pipeline, generator, options.ceiling)
  }
  await generator.stop()
  await pipeline.stop()
  if (profileDir !== undefined) profiles.push(...summariseProfiles(profileDir).map((p) => ({ ...p, program: `${p.program} (steady + ceiling)` })))
  await dropTable(stack.pgUrl, roll.table)
  duck.close()
}

const referenceScenario = async (stack: Stack, options: BenchOptions, scenarios: Scenarios) => {
  const duck = await openDuckDb()
  const poll = options.reference.pollSeconds
  const { roll, pipeline, generator } = await startLoadedPipeline(stack, "ref", (r) =>
    startPipeline(stack, r, { label: "reference", interval: options.interval, producer: "reference", referencePollSeconds: poll }), 120_000)
  const raw = []
  for (const step of latencySteps("reference", options.reference)) {
    say(`reference poller (${poll} s): ${step.rate} orders/s for ${step.durationMs / 1000} s`)
    raw.push(await runLatencyStep(pipeline, generator, { ...step, drainTimeoutMs: step.drainTimeoutMs + poll * 2000 }))
  }
  const stamps = await readKafkaTimestamps(stack.kafkaBrokers, roll.topic)
  const steps = await analyseSteps(pipeline, raw, duck, stamps)
  for (const s of steps) say(`reference ${s.rate}/s: p50 ${s.latencyMs.p50} ms, p99 ${s.latencyMs.p99} ms, max ${s.latencyMs.max} ms; missing ${s.missing}`)
  scenarios.reference = { producer: "reference", pollSeconds: poll, wakeUp: `polls every ${poll} s`, detection: detectionNote(pipeline.lake.pollMs), steps } satisfies SteadyResult
  await generator.stop()
  await pipeline.stop()
  await dropTable(stack.pgUrl, roll.table)
  duck.close()
}

const trickleScenario = async (stack: Stack, options: BenchOptions, scenarios: Scenarios) => {
  const t = options.trickle
  say(`trickle: ${t.rate} orders/s for ${t.durationMs / 1000} s, table retention ${t.retentionMinutes} min, vacuum every ${t.vacuumIntervalMinutes} min`)
  const result = await runTrickle(stack, t, options.interval)
  const v = result.verdict
  say(`trickle: max ${v.maxFilesPerDate} live files per date; _delta_log/ ${v.logMiddleThirdMax} -> ${v.logLastThirdMax} files (middle -> last third); ` +
    `p99 ${result.latencyMs.p99} ms, worst window ${v.worstWindowP99Ms} ms; count(*) ${result.count?.tableMs ?? "?"} ms vs ${result.count?.oneFileMs ?? "?"} ms in one file (${result.count?.ratio ?? "?"}x); missing ${result.missing}`)
  scenarios.trickle = result
}

const scaleScenario = async (stack: Stack, options: BenchOptions, scenarios: Scenarios) => {
  const s = options.scale
  say(`scale: ${s.rows} orders, lake local and on S3 x ${s.consumers.join(" and ")} consumer(s) over ${s.partitions} partitions; ` +
    `then ${s.latency.rate} orders/s for ${s.latency.durationMs / 1000} s on each store`)
  const duck = await openDuckDb()
  try {
    scenarios.scale = await runScale(stack, s, options.interval, duck)
  } finally {
    duck.close()
  }
}

const captureScenario = async (stack: Stack, options: BenchOptions, scenarios: Scenarios) => {
  const c = options.capture
  say(`capture: poll against logical; ${c.latency.rate} orders/s for ${c.latency.durationMs / 1000} s (${c.loads.join(", ")}), ` +
    `${c.rows} orders backfilled x ${c.repetitions}; producer with ${[...programNodeOptions.producer, ...c.producerNodeArgs].join(" ") || "no Node options"}`)
  const duck = await openDuckDb()
  try {
    scenarios.capture = await runCapture(stack, c, options.interval, duck)
  } finally {
    duck.close()
  }
}

const tablesScenario = async (stack: Stack, options: BenchOptions, scenarios: Scenarios) => {
  const t = options.tables
  say(`tables: orders alone against orders + restaurants + order_items (logical); ${t.latency.rate} changes/s for ${t.latency.durationMs / 1000} s, ` +
    `${t.rows} rows per table backfilled x ${t.repetitions}`)
  scenarios.tables = await runTables(stack, t, options.interval)
}

const main = async (): Promise<number> => {
  let options: ReturnType<typeof parseOptions>
  try {
    options = parseOptions(process.argv.slice(2), join(repoRoot, "bench", "results"))
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${usage}\n`)
    return 2
  }
  if (options === "help") {
    process.stdout.write(`${usage}\n`)
    return 0
  }
  if ("render" in options) {
    const stored = JSON.parse(readFileSync(options.render, "utf8")) as BenchResult
    const result: BenchResult = { ...stored, ratios: evaluateRatios(stored), targets: evaluateTargets(stored) }
    const mdPath = join(options.outDir ?? dirname(options.render), `${result.mode}.md`)
    writeFileSync(mdPath, renderMarkdown(result))
    process.stdout.write(`${mdPath}\n`)
    return 0
  }
  installSignalHandlers()
  buildPrograms()
  const started = new Date()
  const runId = `${options.mode}-${stamp(started)}`
  const profileRoot = options.profile ? join(options.outDir, "profiles", runId) : null
  const scenarios: Scenarios = {}
  const profiles: Profiles = []
  const codeVersions: Record<string, string> = {}
  let error: string | undefined
  let stack: Stack | undefined
  let facts: Awaited<ReturnType<typeof machineFacts>> | undefined
  say(`${options.mode} run ${runId}: ${[...options.only].join(", ")}; load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  try {
    stack = await resolveStack()
    facts = await machineFacts(stack)
    if (options.only.has("backfill") || options.only.has("native")) {
      codeVersions["backfill"] = codeVersion()
      await backfillScenario(stack, options, scenarios, profiles, profileRoot)
    }
    if (options.only.has("steady") || options.only.has("ceiling")) {
      codeVersions["steady+ceiling"] = codeVersion()
      await steadyAndCeiling(stack, options, scenarios, profiles, profileRoot)
    }
    if (options.only.has("reference")) {
      codeVersions["reference"] = codeVersion()
      await referenceScenario(stack, options, scenarios)
    }
    if (options.only.has("trickle")) {
      codeVersions["trickle"] = codeVersion()
      await trickleScenario(stack, options, scenarios)
    }
    if (options.only.has("scale")) {
      codeVersions["scale"] = codeVersion()
      await scaleScenario(stack, options, scenarios)
    }
    if (options.only.has("capture")) {
      codeVersions["capture"] = codeVersion()
      await captureScenario(stack, options, scenarios)
    }
    if (options.only.has("tables")) {
      codeVersions["tables"] = codeVersion()
      await tablesScenario(stack, options, scenarios)
    }
  } catch (e) {
    error = e instanceof Error ? (e.stack ?? e.message) : String(e)
    say(`FAILED: ${error}`)
  }
  const finished = new Date()
  const partial = { scenarios, mode: options.mode }
  const result: BenchResult = {
    schema: RESULT_SCHEMA,
    mode: options.mode,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationS: Math.round((finished.getTime() - started.getTime()) / 1000),
    machine: {
      ...(facts ?? {
        cores: 0, cpuModel: "?", memoryGiB: 0, kernel: "?", node: process.version, kafka: "?", postgres: "?", kcat: null,
        gitCommit: null, gitDirty: null, loadAverageAtStart: []
      }),
      loadAverageAtEnd: loadavg().map((l) => Math.round(l * 100) / 100)
    },
    stack: stack === undefined
      ? { source: "local", kafkaBrokers: "?", pgUrl: "?" }
      : { source: stack.source, kafkaBrokers: stack.kafkaBrokers, pgUrl: redactUrl(stack.pgUrl) },
    settings: {
      interval: effectiveInterval(options),
      pipeline: pipelineSettings(benchOverrides(options)),
      only: [...options.only],
      backfill: options.backfill,
      native: options.native,
      steady: options.steady,
      ceiling: options.ceiling,
      reference: options.reference,
      trickle: options.trickle,
      scale: options.scale,
      capture: options.capture,
      tables: options.tables,
      growthTolerance: options.ceiling.growthTolerance,
      profile: options.profile
    },
    scenarios,
    ratios: evaluateRatios(partial),
    targets: evaluateTargets(partial),
    profiles,
    codeVersions,
    ...(error === undefined ? {} : { error })
  }
  mkdirSync(options.outDir, { recursive: true })
  const jsonPath = join(options.outDir, `${runId}.json`)
  const mdPath = join(options.outDir, `${options.mode}.md`)
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`)
  writeFileSync(mdPath, renderMarkdown(result))
  process.stdout.write(`${jsonPath}\n${mdPath}\n`)
  const expected = ([...options.only] as Array<keyof Scenarios>)
  const problems = resultProblems(result, expected)
  for (const problem of problems) say(`problem: ${problem}`)
  say(`done in ${result.durationS} s; ${problems.length === 0 ? "result sane" : `${problems.length} problem(s)`}`)
  return problems.length === 0 ? 0 : 1
}

main()
  .catch((error) => {
    say(`unexpected: ${error instanceof Error ? error.stack : String(error)}`)
    return 1
  })
  .then(async (code) => {
    await runAll()
    process.exit(code)
  })
