/**
 * Scale: the lake on S3-compatible storage against a local directory, and one consumer against
 * three sharing the topic's partitions, in the same run on the same PostgreSQL table.
 *
 *   backfill  N orders already in PostgreSQL; local x1, local x3, S3 x1, S3 x3, each with a fresh
 *             topic of `partitions` partitions and a fresh table; spawn -> the table's positions
 *             cover all N (the version that got there, first seen by the follower).
 *   latency   a steady rate (1,000 orders/s) for a window, one consumer, the table on S3 and on
 *             local disk: per order, the version naming its file first seen − its INSERT's COMMIT.
 *
 * Both stores are followed by the same poller (bench/tableFollower.ts, through the table's storage
 * port), so the detection delay is the same on both. The S3 server is the run's own S3Proxy unless
 * AWS_ENDPOINT_URL_S3 and LAKE_BUCKET are set.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { s3EnvOf, startLocalS3 } from "../../scripts/stack/s3Server.ts"
import { readLakeVersion } from "../../src/analytics/lakeQuery.ts"
import type { S3Settings } from "../../src/layers/storage/s3TableStorage.ts"
import { tableStorageFor } from "../../src/layers/storage/tableStorageFor.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import type { Program } from "../children.ts"
import { onCleanup } from "../cleanup.ts"
import { createTable, dropTable } from "../database.ts"
import { startGenerator } from "../generatorClient.ts"
import type { DuckDb } from "../lakeWatcher.ts"
import { createRollTopics, newRoll, type PipelinePrograms, startPipelinePrograms } from "../pipeline.ts"
import { readMachineCpu } from "../procStats.ts"
import type { Stack } from "../stack.ts"
import { type Distribution, distribution, median, perSecond, round, seconds, sleep, waitUntil } from "../stats.ts"
import { followTable, stderrLogger } from "../tableFollower.ts"
import { prepareBackfillTable } from "./backfill.ts"

export type Store = "local" | "s3"

export interface ScaleOptions {
  readonly rows: number
  readonly days: number
  readonly partitions: number
  /** The consumer counts to compare (e.g. [1, 3]). */
  readonly consumers: ReadonlyArray<number>
  /** Rounds of the four backfills (each round runs every store x consumers once, in the same order). */
  readonly repetitions: number
  readonly timeoutMs: number
  readonly latency: { readonly rate: number; readonly durationMs: number; readonly tickMs: number; readonly drainTimeoutMs: number }
  /** The table follower's period. */
  readonly pollMs: number
}

export interface ScaleBackfillRun {
  /** 1-based round of the four backfills. */
  readonly round: number
  readonly store: Store
  readonly consumers: number
  readonly partitions: number
  readonly rows: number
  /** Spawn of the programs until a version covering every order was first seen. */
  readonly endToEndSeconds: number
  readonly endToEndRowsPerS: number
  /** Spawn until the first version with data. */
  readonly firstDataS: number | null
  /** Data files added by the run's versions (streamed and compacted), and live at the end; rows from the files' stats. */
  readonly files: { readonly written: number; readonly streamed: number; readonly live: number; readonly avgStreamedRows: number }
  /** Versions: batch commits (adds with positions), compactions (removes), the last version. */
  readonly commits: { readonly versions: number; readonly batchCommits: number; readonly compactionCommits: number; readonly finalVersion: number }
  readonly producer: { readonly cpuSeconds: number; readonly cpuCores: number; readonly peakRssMiB: number | null }
  readonly consumer: {
    readonly cpuSeconds: number
    readonly cpuCores: number
    /** VmHWM summed over the consumers, and the largest one. */
    readonly peakRssMiBSum: number
    readonly peakRssMiBMax: number
    readonly each: ReadonlyArray<{ readonly cpuSeconds: number; readonly peakRssMiB: number | null; readonly batches: number }>
  }
  readonly machineCpuCores: number
  /** DuckDB over readLakeVersion's exact file list, after the programs stopped. */
  readonly lake: { readonly version: number; readonly files: number; readonly rows: number; readonly distinctIds: number; readonly checkSeconds: number }
  readonly exitCodes: { readonly producer: number | null; readonly consumers: ReadonlyArray<number | null> }
}

export interface ScaleLatencyRun {
  readonly store: Store
  readonly consumers: number
  readonly rate: number
  readonly durationS: number
  readonly inserted: number
  readonly achievedRate: number
  readonly lakeRows: number
  readonly missing: number
  readonly duplicates: number
  /** Version naming the order's file first seen by the follower − the INSERT's COMMIT, per order. */
  readonly latencyMs: Distribution
  readonly files: number
  readonly versions: number
  readonly drainS: number
  readonly producer: { readonly cpuCores: number; readonly peakRssMiB: number | null }
  readonly consumer: { readonly cpuCores: number; readonly peakRssMiB: number | null }
  readonly machineCpuCores: number
}

export interface ScaleSummary {
  readonly store: Store
  readonly consumers: number
  readonly runs: number
  readonly endToEndRowsPerS: number
  readonly endToEndSeconds: number
  /** Median over the rounds of (this ÷ local x1 of the same round). */
  readonly vsLocal1: number | null
  readonly files: number
  readonly batchCommits: number
  readonly compactionCommits: number
  readonly consumerCpuSeconds: number
  readonly peakRssMiBSum: number
  readonly peakRssMiBMax: number
}

/** Medians per store x consumers, and each run's rate over local x1 of its own round (median over rounds). */
export const summariseScale = (runs: ReadonlyArray<ScaleBackfillRun>): Array<ScaleSummary> => {
  const keys = [...new Set(runs.map((r) => `${r.store}|${r.consumers}`))]
  return keys.map((key) => {
    const mine = runs.filter((r) => `${r.store}|${r.consumers}` === key)
    const m = (f: (r: ScaleBackfillRun) => number) => median(mine.map(f))
    const ratios = mine.flatMap((r) => {
      const base = runs.find((b) => b.round === r.round && b.store === "local" && b.consumers === 1)
      return base === undefined ? [] : [r.endToEndRowsPerS / base.endToEndRowsPerS]
    })
    return {
      store: mine[0]!.store,
      consumers: mine[0]!.consumers,
      runs: mine.length,
      endToEndRowsPerS: Math.round(m((r) => r.endToEndRowsPerS)),
      endToEndSeconds: round(m((r) => r.endToEndSeconds), 2),
      vsLocal1: ratios.length === 0 ? null : round(median(ratios), 2),
      files: m((r) => r.files.streamed),
      batchCommits: m((r) => r.commits.batchCommits),
      compactionCommits: m((r) => r.commits.compactionCommits),
      consumerCpuSeconds: round(m((r) => r.consumer.cpuSeconds), 1),
      peakRssMiBSum: round(m((r) => r.consumer.peakRssMiBSum), 1),
      peakRssMiBMax: round(m((r) => r.consumer.peakRssMiBMax), 1)
    }
  })
}

export interface ScaleResult {
  readonly rows: number
  readonly partitions: number
  readonly loadSeconds: number
  readonly s3: { readonly server: string; readonly endpoint: string; readonly startS: number | null }
  readonly followMs: number
  readonly repetitions: number
  readonly backfill: ReadonlyArray<ScaleBackfillRun>
  /** Per store x consumers: medians over the rounds. */
  readonly summary: ReadonlyArray<ScaleSummary>
  readonly latency: ReadonlyArray<ScaleLatencyRun>
}

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

interface S3Target {
  readonly bucket: string
  readonly env: Record<string, string>
  readonly settings: S3Settings
  readonly describe: { readonly server: string; readonly endpoint: string; readonly startS: number | null }
}

/** The run's own S3Proxy (stopped at cleanup), or the one AWS_ENDPOINT_URL_S3 + LAKE_BUCKET name. */
const resolveS3 = async (cacheDir: string): Promise<S3Target> => {
  const endpoint = process.env["AWS_ENDPOINT_URL_S3"]
  const bucket = process.env["LAKE_BUCKET"]
  if (endpoint && bucket) {
    return {
      bucket,
      env: {},
      settings: { endpoint, region: process.env["AWS_REGION"] || undefined, cacheDir },
      describe: { server: "from AWS_ENDPOINT_URL_S3 + LAKE_BUCKET", endpoint, startS: null }
    }
  }
  const started = Date.now()
  const s3 = await startLocalS3({ bucket: "bench-lake" })
  onCleanup(`stop S3Proxy (pid ${s3.pid})`, () => s3.stop())
  const startS = round((Date.now() - started) / 1000, 1)
  say(`scale: S3Proxy at ${s3.endpoint} (pid ${s3.pid}) in ${startS} s`)
  return {
    bucket: s3.bucket,
    env: s3EnvOf(s3),
    settings: {
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      cacheDir
    },
    describe: { server: "S3Proxy 4.1.0 (this run's own, objects as files under /tmp)", endpoint: s3.endpoint, startS }
  }
}

const sumOf = (values: ReadonlyArray<number>) => values.reduce((a, b) => a + b, 0)

const assertAllRunning = (programs: PipelinePrograms) => {
  for (const program of [programs.producer, ...programs.consumers]) {
    if (!program.isRunning()) throw new Error(`${program.name} exited unexpectedly; output:\n${program.output()}`)
  }
}

const lakePathFor = (store: Store, s3: S3Target, roll: { roll: string; lake: string }) =>
  store === "local" ? roll.lake : `s3://${s3.bucket}/${roll.roll}/orders`

/**
 * readLakeVersion reads S3 settings and keys from the environment and copies S3 files to the XDG
 * cache: both pointed at this run's for the call.
 */
const withLakeEnv = async <A>(env: Record<string, string>, cacheHome: string, f: () => Promise<A>): Promise<A> => {
  const saved = new Map<string, string | undefined>()
  for (const [key, value] of Object.entries({ ...env, XDG_CACHE_HOME: cacheHome })) {
    saved.set(key, process.env[key])
    process.env[key] = value
  }
  try {
    return await f()
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
  }
}

const checkLake = async (lakePath: string, s3: S3Target, cacheHome: string, duck: DuckDb) => {
  const started = Date.now()
  const lake = await withLakeEnv(s3.env, cacheHome, () => Effect.runPromise(readLakeVersion(lakePath).pipe(Effect.provide(stderrLogger))))
  const summary = await duck.summary(lake.files.map((f) => f.location))
  return { version: lake.version, files: lake.files.length, rows: summary.rows, distinctIds: summary.distinctIds, checkSeconds: seconds(Date.now() - started, 1) }
}

/** Removes an S3 table of the run (best effort): an S3 server from the environment keeps its objects otherwise. */
const removeS3Lake = async (lakePath: string, s3: S3Target) => {
  const removal = Effect.gen(function*() {
    const storage = yield* TableStorage
    const objects = yield* storage.list("")
    yield* Effect.forEach(objects, (o) => storage.remove(o.path), { concurrency: 8, discard: true })
    return objects.length
  }).pipe(Effect.provide(Layer.provideMerge(tableStorageFor(lakePath, s3.settings), stderrLogger)))
  await Effect.runPromise(removal).catch((error: unknown) => say(`scale: could not remove ${lakePath}: ${String(error)}`))
}

const programCpu = (program: Program, from: number, to: number) => program.usage.between(from, to)

const runScaleBackfill = async (
  roundNo: number,
  stack: Stack,
  table: string,
  store: Store,
  consumers: number,
  options: ScaleOptions,
  interval: number | null,
  s3: S3Target,
  cacheHome: string,
  duck: DuckDb
): Promise<ScaleBackfillRun> => {
  const roll = newRoll(stack, `sc${store === "s3" ? "s" : "l"}${consumers}`, table)
  const lakePath = lakePathFor(store, s3, roll)
  await createRollTopics(stack, roll, options.partitions)
  const follower = await followTable(lakePath, { topic: roll.topic, pollMs: options.pollMs, ...(store === "s3" ? { s3Settings: s3.settings } : {}) })
  const machineBefore = readMachineCpu()
  const programs = startPipelinePrograms(stack, roll, {
    label: `scale-${store}-x${consumers}`,
    interval,
    producer: "ours",
    consumers,
    lakePath,
    extraEnv: { ...(store === "s3" ? s3.env : {}), KAFKA_PARTITIONS: String(options.partitions) }
  })
  const t0 = programs.startedAt
  const done = await waitUntil(() => {
    assertAllRunning(programs)
    return follower.messages() >= options.rows
  }, options.timeoutMs, 50)
  if (!done) {
    await programs.stop()
    throw new Error(`scale ${store} x${consumers}: only ${follower.messages()} of ${options.rows} orders in the table within ${options.timeoutMs / 1000} s` +
      (follower.lastError() === null ? "" : `; the follower's last error: ${follower.lastError()}`))
  }
  const tEnd = follower.reachedAt(options.rows)!
  const machineAfter = readMachineCpu()
  const machineWallS = (Date.now() - t0) / 1000
  const producerPeak = programs.producer.peakRssMiB()
  const consumerPeaks = programs.consumers.map((c) => c.peakRssMiB())
  const producerCpu = programCpu(programs.producer, t0, tEnd)
  const consumerCpu = programs.consumers.map((c) => programCpu(c, t0, tEnd))
  const batches = programs.consumers.map((c) => c.logs.filter((l) => l.message === "batch written").length)
  const exit = await programs.stop()
  await follower.poll()
  await follower.stop()

  const versions = follower.versions
  const files = [...follower.files.values()]
  const streamed = files.filter((f) => f.firstOffset !== null)
  const streamedRows = sumOf(streamed.map((f) => f.rows ?? 0))
  const firstData = versions.find((v) => v.adds > 0)
  const lake = await checkLake(lakePath, s3, cacheHome, duck)
  if (store === "s3") await removeS3Lake(lakePath, s3)
  const wallMs = tEnd - t0
  return {
    round: roundNo,
    store,
    consumers,
    partitions: options.partitions,
    rows: options.rows,
    endToEndSeconds: seconds(wallMs),
    endToEndRowsPerS: perSecond(options.rows, wallMs),
    firstDataS: firstData === undefined ? null : seconds(firstData.seenAt - t0),
    files: {
      written: files.length,
      streamed: streamed.length,
      live: follower.snapshot().files.size,
      avgStreamedRows: streamed.length > 0 ? Math.round(streamedRows / streamed.length) : 0
    },
    commits: {
      versions: versions.length,
      batchCommits: versions.filter((v) => v.adds > 0 && v.removes === 0).length,
      compactionCommits: versions.filter((v) => v.removes > 0).length,
      finalVersion: follower.version()
    },
    producer: { cpuSeconds: producerCpu.cpuSeconds, cpuCores: producerCpu.cpuCores, peakRssMiB: producerPeak },
    consumer: {
      cpuSeconds: round(sumOf(consumerCpu.map((c) => c.cpuSeconds)), 1),
      cpuCores: round(sumOf(consumerCpu.map((c) => c.cpuSeconds)) / (wallMs / 1000), 2),
      peakRssMiBSum: round(sumOf(consumerPeaks.map((p) => p ?? 0)), 1),
      peakRssMiBMax: Math.max(0, ...consumerPeaks.map((p) => p ?? 0)),
      each: consumerCpu.map((c, i) => ({ cpuSeconds: c.cpuSeconds, peakRssMiB: consumerPeaks[i] ?? null, batches: batches[i]! }))
    },
    machineCpuCores: round((machineAfter.busy - machineBefore.busy) / machineWallS, 2),
    lake,
    exitCodes: { producer: exit.producer, consumers: exit.consumers }
  }
}

const runScaleLatency = async (
  stack: Stack,
  store: Store,
  options: ScaleOptions,
  interval: number | null,
  s3: S3Target,
  duck: DuckDb
): Promise<ScaleLatencyRun> => {
  const roll = newRoll(stack, `scl${store === "s3" ? "s" : "l"}`)
  const lakePath = lakePathFor(store, s3, roll)
  await createTable(stack.pgUrl, roll.table, true)
  await createRollTopics(stack, roll, options.partitions)
  const follower = await followTable(lakePath, { topic: roll.topic, pollMs: options.pollMs, ...(store === "s3" ? { s3Settings: s3.settings } : {}) })
  const programs = startPipelinePrograms(stack, roll, {
    label: `scale-latency-${store}`,
    interval,
    producer: "ours",
    consumers: 1,
    lakePath,
    extraEnv: { ...(store === "s3" ? s3.env : {}), KAFKA_PARTITIONS: String(options.partitions) }
  })
  let generatorStopped = false
  const generator = await startGenerator(stack.pgUrl, roll.table).catch(async (error: unknown) => {
    await programs.stop()
    throw error
  })
  const stopGenerator = async () => {
    if (generatorStopped) return
    generatorStopped = true
    await generator.stop()
  }
  try {
    // Warm-up: connections, JIT, the group join; the measured orders all find a warm pipeline.
    await generator.run("scale-warm-up", 200, 1_000, 20)
    const warm = await waitUntil(() => {
      assertAllRunning(programs)
      return follower.messages() >= generator.committed()
    }, 120_000, 50)
    if (!warm) throw new Error(`scale latency ${store}: the warm-up orders did not reach the table within 120 s`)
    const consumer = programs.consumers[0]!
    programs.producer.resetPeak()
    consumer.resetPeak()
    const label = `scale-${store}-${options.latency.rate}`
    const before = generator.commits.length
    const machineBefore = readMachineCpu()
    const startedAt = Date.now()
    const stepDone = await generator.run(label, options.latency.rate, options.latency.durationMs, options.latency.tickMs)
    const insertsEndedAt = Date.now()
    const target = generator.committed()
    const drained = await waitUntil(() => {
      assertAllRunning(programs)
      return follower.messages() >= target
    }, options.latency.drainTimeoutMs, 20)
    const drainedAt = Date.now()
    const machineAfter = readMachineCpu()
    if (!drained) say(`scale latency ${store}: ${target - follower.messages()} orders still missing after ${options.latency.drainTimeoutMs / 1000} s`)
    const producerUse = { cpuCores: programs.producer.usage.between(startedAt, drainedAt).cpuCores, peakRssMiB: programs.producer.peakRssMiB() }
    const consumerUse = { cpuCores: consumer.usage.between(startedAt, drainedAt).cpuCores, peakRssMiB: consumer.peakRssMiB() }
    const commits = generator.commits.slice(before).filter((c) => c.label === label)
    await stopGenerator()
    await programs.stop()
    await follower.poll()
    // The step's streamed files (compacted ones hold rows an earlier version already named).
    const files = [...follower.files.values()].filter((f) => f.firstOffset !== null && f.seenAt >= startedAt)
    const locals = await follower.localPaths(files)
    await follower.stop()
    if (store === "s3") await removeS3Lake(lakePath, s3)
    const seenByLocal = new Map(files.map((f) => [locals.get(f.logPath)!, f.seenAt]))
    const { ids, files: fileOfRow } = await duck.orderIds([...seenByLocal.keys()])
    const commitAt = new Map<number, number>()
    let inserted = 0
    for (const c of commits) {
      inserted += c.n
      for (let id = c.first; id <= c.last; id++) commitAt.set(id, c.t)
    }
    const seen = new Set<number>()
    const latency: Array<number> = []
    let lakeRows = 0
    let duplicates = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      const committed = commitAt.get(id)
      if (committed === undefined) continue
      lakeRows += 1
      if (seen.has(id)) {
        duplicates += 1
        continue
      }
      seen.add(id)
      latency.push(seenByLocal.get(fileOfRow[i]!)! - committed)
    }
    const stepVersions = follower.versions.filter((v) => v.seenAt >= startedAt)
    return {
      store,
      consumers: 1,
      rate: options.latency.rate,
      durationS: seconds(options.latency.durationMs, 1),
      inserted,
      achievedRate: stepDone.achievedRate,
      lakeRows,
      missing: inserted - seen.size,
      duplicates,
      latencyMs: distribution(latency),
      files: files.length,
      versions: stepVersions.length,
      drainS: round((Math.max(insertsEndedAt, ...files.map((f) => f.seenAt)) - insertsEndedAt) / 1000, 2),
      producer: producerUse,
      consumer: consumerUse,
      machineCpuCores: round((machineAfter.busy - machineBefore.busy) / ((drainedAt - startedAt) / 1000), 2)
    }
  } finally {
    await stopGenerator().catch(() => undefined)
    await programs.stop()
    await follower.stop()
    await dropTable(stack.pgUrl, roll.table)
  }
}

export const runScale = async (stack: Stack, options: ScaleOptions, interval: number | null, duck: DuckDb): Promise<ScaleResult> => {
  const cacheHome = mkdtempSync(join(tmpdir(), "fop-bench-scale-cache-"))
  onCleanup(`remove ${cacheHome}`, () => rmSync(cacheHome, { recursive: true, force: true }))
  const s3 = await resolveS3(join(cacheHome, "lake-cache"))
  const { roll, loadSeconds } = await prepareBackfillTable(stack, { rows: options.rows, days: options.days, interval, timeoutMs: options.timeoutMs })
  const backfill: Array<ScaleBackfillRun> = []
  for (let roundNo = 1; roundNo <= options.repetitions; roundNo++) {
    for (const store of ["local", "s3"] as const) {
      for (const consumers of options.consumers) {
        say(`scale backfill ${roundNo}/${options.repetitions}: ${options.rows} orders, lake ${store}, ${consumers} consumer(s), ${options.partitions} partitions`)
        const run = await runScaleBackfill(roundNo, stack, roll.table, store, consumers, options, interval, s3, cacheHome, duck)
        backfill.push(run)
        say(`scale ${store} x${consumers}: ${run.endToEndRowsPerS}/s end to end (${run.endToEndSeconds} s); ${run.files.streamed} files, ` +
          `${run.commits.batchCommits} batch commits, ${run.commits.compactionCommits} compactions; consumer CPU ${run.consumer.cpuSeconds} s, ` +
          `peak RSS sum ${run.consumer.peakRssMiBSum} MiB (max ${run.consumer.peakRssMiBMax}); DuckDB ${run.lake.rows} rows, ${run.lake.distinctIds} distinct`)
        // Let the machine settle between runs (the last run's processes, the broker's log flush).
        await sleep(1_000)
      }
    }
  }
  await dropTable(stack.pgUrl, roll.table)
  const latency: Array<ScaleLatencyRun> = []
  for (const store of ["local", "s3"] as const) {
    say(`scale latency: ${options.latency.rate} orders/s for ${options.latency.durationMs / 1000} s, lake ${store}, 1 consumer`)
    const run = await runScaleLatency(stack, store, options, interval, s3, duck)
    latency.push(run)
    say(`scale latency ${store}: p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, max ${run.latencyMs.max} ms; ${run.files} files; missing ${run.missing}`)
  }
  return {
    rows: options.rows,
    partitions: options.partitions,
    loadSeconds: round(loadSeconds, 1),
    s3: s3.describe,
    followMs: options.pollMs,
    repetitions: options.repetitions,
    backfill,
    summary: summariseScale(backfill),
    latency
  }
}
