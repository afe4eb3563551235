/**
 * Trickle: a low steady rate (50 orders/s) for minutes, the load that makes a small file and a
 * table version per batch. What must stay bounded while the consumer compacts, checkpoints, cleans
 * the log and vacuums in the background: live files per date partition, files in `_delta_log/`,
 * and the commit-to-lake latency. At the end, DuckDB's count(*) over the table's exact files
 * against the same rows in one file.
 *
 * The table is followed here the way a reader follows it: its log, version by version (one
 * `readCommit` of the next version every `followMs`), never a directory listing. An order is in the
 * lake when a version naming its file exists: latency(order) = that commit file's modification time
 * (the put-if-absent link, see src/layers/storage/fileTableStorage.ts) − the time its INSERT's
 * COMMIT returned. The time this process first saw the version is kept too (it adds up to
 * `followMs` of polling and this process's event-loop delay).
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { Effect, Option } from "effect"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import type { TableStorage } from "../../src/services/TableStorage.ts"
import type { Action, AddFile } from "../../src/table/actions.ts"
import { dateOf, storagePathOf } from "../../src/table/dataPaths.ts"
import { loadSnapshot, readCommit } from "../../src/table/readLog.ts"
import { SnapshotBuilder, statsOf } from "../../src/table/snapshot.ts"
import { onCleanup } from "../cleanup.ts"
import { createTable, dropTable } from "../database.ts"
import { type Generator, startGenerator } from "../generatorClient.ts"
import { assertRunning, createRollTopics, newRoll, type Pipeline, startPipeline } from "../pipeline.ts"
import { readMachineCpu } from "../procStats.ts"
import type { Stack } from "../stack.ts"
import { type Distribution, distribution, median, round, sleep, waitUntil } from "../stats.ts"

export interface TrickleOptions {
  readonly rate: number
  readonly durationMs: number
  /** How often the bounds are sampled (and the width of a latency window). */
  readonly sampleMs: number
  readonly tickMs: number
  /** TABLE_RETENTION_MINUTES for this run: short, so that the log's steady state shows within it. */
  readonly retentionMinutes: number
  /**
   * TABLE_IDLE_COMPACTION_SECONDS for this run: once the inserts stop and the table has drained,
   * the consumer merges the quiet partition whole after this long; the count comparison waits for it.
   */
  readonly idleCompactionS: number
  /** TABLE_VACUUM_INTERVAL_MINUTES for this run. */
  readonly vacuumIntervalMinutes: number
  readonly drainTimeoutMs: number
  /** count(*) runs per side of the DuckDB comparison (the median is reported). */
  readonly countRuns: number
}

/** The bounds the run is judged against (stated in the report). */
export const trickleBounds = {
  /** Live files in any one date partition, at every sample. */
  maxFilesPerDate: 64,
  /** `_delta_log/` stops growing: the largest count in the last third ≤ this × the largest in the middle third. */
  logGrowth: 1.1,
  /** p99 commit-to-lake of the orders committed in each sample window. */
  p99Ms: 250,
  /** count(*) over the table's files ≤ this × count(*) over the same rows in one file (medians). */
  countRatio: 2
} as const

export interface TrickleSample {
  /** Seconds since the trickle started (end of the window). */
  readonly atS: number
  readonly version: number
  readonly liveFiles: number
  readonly dates: number
  /** Live files of the fullest date partition. */
  readonly maxFilesPerDate: number
  /** Every file in `_delta_log/`, and of them commits and checkpoint files. */
  readonly logFiles: number
  readonly logCommits: number
  readonly logCheckpoints: number
  /** Parquet files in the date directories, live or not (what vacuum keeps bounded). */
  readonly dataFilesOnDisk: number
  /** Orders committed in this window, and their commit-to-lake latency. */
  readonly orders: number
  readonly p99Ms: number | null
  readonly maxMs: number | null
}

export interface TrickleResult {
  readonly rate: number
  readonly durationS: number
  readonly achievedRate: number
  readonly retentionMinutes: number
  readonly vacuumIntervalMinutes: number
  readonly idleCompactionS: number
  /** Live files in the busiest date partition when the table had every order, and after the idle merge. */
  readonly maxFilesPerDateAtDrain: number
  readonly maxFilesPerDateAtEnd: number
  readonly followMs: number
  readonly inserted: number
  /** Warm-up included: what the table must count at the end. */
  readonly allInserted: number
  /** Trickle orders found in a version's stream file (by the files' order_id bounds). */
  readonly lakeRows: number
  readonly missing: number
  /** Version commit time − COMMIT (the judged figure). */
  readonly latencyMs: Distribution
  /** First seen by this process − COMMIT (includes the follower's polling). */
  readonly seenLatencyMs: Distribution
  readonly samples: ReadonlyArray<TrickleSample>
  readonly bounds: typeof trickleBounds
  readonly verdict: {
    readonly maxFilesPerDate: number
    readonly filesWithinBound: boolean
    readonly logMiddleThirdMax: number
    readonly logLastThirdMax: number
    readonly logStopsGrowing: boolean
    readonly worstWindowP99Ms: number
    readonly windowsOverP99: number
    readonly windows: number
    readonly p99WithinBound: boolean
  }
  /** Versions made during the trickle: batch commits and compaction commits (from the consumer's logs). */
  readonly commits: {
    readonly finalVersion: number
    readonly batchCommits: number
    /** Sum of the `batch written` logs' `ms` (Parquet, file write and commit). */
    readonly batchWriteMs: number
    readonly compactionCommits: number
    readonly compactedInputFiles: number
    readonly vacuums: number
  }
  readonly count: {
    readonly tableFiles: number
    readonly tableRows: number
    readonly oneFileRows: number
    readonly tableMs: number
    readonly oneFileMs: number
    readonly ratio: number | null
    readonly runs: number
    readonly threads: number
  } | null
  /** Data files on disk at the end vs live ones (vacuum removes the rest after the retention). */
  readonly dataFilesOnDiskAtEnd: number
  readonly producer: { readonly cpuCores: number; readonly peakRssMiB: number | null }
  readonly consumer: { readonly cpuCores: number; readonly peakRssMiB: number | null }
  readonly machineCpuCores: number
  /** From the end of the inserts until every order was in a version. */
  readonly drainS: number
}

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

const isStreamAdd = (add: AddFile) => add.dataChange && !add.path.includes("part-compacted-")

interface Landed {
  readonly min: number
  readonly max: number
  readonly rows: number
  /** The version's commit file mtime (ms). */
  readonly at: number
  /** When this process read the version (ms). */
  readonly seenAt: number
}

/** Follows a table's log version by version; keeps the live files and every stream file's id range. */
const followTable = (lake: string, followMs: number) => {
  const storage = fileTableStorage(lake)
  const run = <A, E>(effect: Effect.Effect<A, E, TableStorage>) => Effect.runPromise(Effect.provide(effect, storage))
  let builder: SnapshotBuilder | null = null
  const landed: Array<Landed> = []
  let rows = 0
  let stopped = false
  let failure: unknown = undefined

  const note = (actions: ReadonlyArray<Action>, at: number) => {
    const seenAt = Date.now()
    for (const action of actions) {
      if (!("add" in action) || !isStreamAdd(action.add)) continue
      const stats = statsOf(action.add)
      const min = Number(stats?.minValues?.["order_id"])
      const max = Number(stats?.maxValues?.["order_id"])
      if (stats === undefined || !Number.isFinite(min) || !Number.isFinite(max)) continue
      landed.push({ min, max, rows: stats.numRecords, at, seenAt })
      rows += stats.numRecords
    }
  }

  const step = async () => {
    if (builder === null) {
      const snapshot = await run(loadSnapshot())
      if (snapshot.version < 0) return
      builder = new SnapshotBuilder(snapshot)
      // Stream files of the versions read at once count at the newest one's time (only before the warm-up ends).
      note([...snapshot.files.values()].map((add) => ({ add })), snapshot.timestamp)
    }
    while (!stopped) {
      const next = await run(readCommit(builder.version + 1))
      if (Option.isNone(next)) return
      builder.apply(next.value.version, next.value.actions, next.value.timestamp)
      note(next.value.actions, next.value.timestamp)
    }
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        await step()
      } catch (error) {
        failure = error
        return
      }
      await sleep(followMs)
    }
  })()
  const stop = async () => {
    stopped = true
    await loop
  }
  onCleanup(`stop following ${lake}`, () => void stop())

  return {
    followMs,
    /** Rows of every stream file in the versions read so far. */
    rows: () => {
      if (failure !== undefined) throw failure instanceof Error ? failure : new Error(String(failure))
      return rows
    },
    version: () => builder?.version ?? -1,
    liveFiles: () => {
      const byDate = new Map<string, number>()
      for (const add of builder?.files.values() ?? []) byDate.set(dateOf(add), (byDate.get(dateOf(add)) ?? 0) + 1)
      return { total: builder?.files.size ?? 0, dates: byDate.size, max: Math.max(0, ...byDate.values()) }
    },
    landed,
    stop
  }
}

const logListing = (lake: string) => {
  let names: Array<string>
  try {
    names = readdirSync(join(lake, "_delta_log"))
  } catch {
    names = []
  }
  return {
    files: names.length,
    commits: names.filter((n) => /^\d{20}\.json$/.test(n)).length,
    checkpoints: names.filter((n) => /^\d{20}\.checkpoint(\.\d{10}\.\d{10})?\.parquet$/.test(n)).length
  }
}

const dataFilesOnDisk = (lake: string) => {
  let count = 0
  let dirs: Array<string>
  try {
    dirs = readdirSync(lake).filter((n) => n.startsWith("date="))
  } catch {
    return 0
  }
  for (const dir of dirs) {
    try {
      count += readdirSync(join(lake, dir)).filter((n) => n.endsWith(".parquet")).length
    } catch {
      // removed meanwhile
    }
  }
  return count
}

const quote = (text: string) => `'${text.replaceAll("'", "''")}'`

/** count(*) over the table's exact files vs over the same rows in one file: medians of `runs` each, after one untimed run. */
const compareCounts = async (lake: string, runs: number) => {
  const snapshot = await Effect.runPromise(Effect.provide(loadSnapshot(), fileTableStorage(lake)))
  const paths = [...snapshot.files.keys()].map((p) => join(lake, storagePathOf(p, lake)))
  if (paths.length === 0) return null
  const dir = mkdtempSync(join(tmpdir(), "fop-bench-trickle-count-"))
  onCleanup(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }))
  // The pipeline is stopped by now: DuckDB may use every core.
  const instance = await DuckDBInstance.create(":memory:")
  const connection = await instance.connect()
  try {
    const threads = Number((await connection.runAndReadAll("SELECT current_setting('threads')")).getRowsJS()[0]![0])
    const list = `[${paths.map(quote).join(", ")}]`
    const oneFile = join(dir, "one.parquet")
    await connection.run(`COPY (SELECT * FROM read_parquet(${list})) TO ${quote(oneFile)} (FORMAT parquet)`)
    const timeCount = async (source: string) => {
      const times: Array<number> = []
      let n = 0
      for (let i = 0; i <= runs; i++) {
        const t0 = performance.now()
        n = Number((await connection.runAndReadAll(`SELECT count(*)::BIGINT FROM read_parquet(${source})`)).getRowsJS()[0]![0])
        if (i > 0) times.push(performance.now() - t0)
      }
      return { rows: n, ms: round(median(times), 2) }
    }
    const table = await timeCount(list)
    const one = await timeCount(quote(oneFile))
    return {
      tableFiles: paths.length,
      tableRows: table.rows,
      oneFileRows: one.rows,
      tableMs: table.ms,
      oneFileMs: one.ms,
      ratio: one.ms > 0 ? round(table.ms / one.ms, 2) : null,
      runs,
      threads
    }
  } finally {
    connection.closeSync()
    instance.closeSync()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Orders by window of commit time; per order, the version that first named a file whose id range holds it. */
const latencies = (generator: Generator, label: string, landed: ReadonlyArray<Landed>, startedAt: number, sampleMs: number) => {
  const commits = generator.commits.filter((c) => c.label === label)
  let minId = Infinity
  let maxId = -Infinity
  for (const c of commits) {
    minId = Math.min(minId, c.first)
    maxId = Math.max(maxId, c.last)
  }
  const span = Number.isFinite(minId) ? maxId - minId + 1 : 0
  const at = new Float64Array(span).fill(NaN)
  const seenAt = new Float64Array(span).fill(NaN)
  for (const l of landed) {
    for (let id = Math.max(l.min, minId); id <= Math.min(l.max, maxId); id++) {
      const i = id - minId
      if (Number.isNaN(at[i]!) || l.at < at[i]!) at[i] = l.at
      if (Number.isNaN(seenAt[i]!) || l.seenAt < seenAt[i]!) seenAt[i] = l.seenAt
    }
  }
  const all: Array<number> = []
  const seen: Array<number> = []
  const windows = new Map<number, Array<number>>()
  let inserted = 0
  let found = 0
  for (const c of commits) {
    inserted += c.n
    const window = Math.floor((c.t - startedAt) / sampleMs)
    for (let id = c.first; id <= c.last; id++) {
      const i = id - minId
      if (Number.isNaN(at[i]!)) continue
      found += 1
      const ms = at[i]! - c.t
      all.push(ms)
      seen.push(seenAt[i]! - c.t)
      const list = windows.get(window) ?? []
      windows.set(window, list)
      list.push(ms)
    }
  }
  return { inserted, found, all, seen, windows }
}

const batchCommitFigures = (pipeline: Pipeline, from: number, to: number, finalVersion: number) => {
  const inSpan = pipeline.consumer.logs.filter((l) => l.receivedAt >= from && l.receivedAt <= to)
  const batches = inSpan.filter((l) => l.message === "batch written" && l.annotations["version"] !== "none")
  const compactions = inSpan.filter((l) => l.message === "compacted")
  return {
    finalVersion,
    batchCommits: batches.length,
    batchWriteMs: Math.round(batches.reduce((s, l) => s + Number(l.annotations["ms"] ?? 0), 0)),
    compactionCommits: compactions.length,
    compactedInputFiles: compactions.reduce((s, l) => s + Number(l.annotations["files"] ?? 0), 0),
    vacuums: inSpan.filter((l) => l.message === "vacuumed").length
  }
}

export const runTrickle = async (stack: Stack, options: TrickleOptions, interval: number | null): Promise<TrickleResult> => {
  const roll = newRoll(stack, "tr")
  await createTable(stack.pgUrl, roll.table, true)
  await createRollTopics(stack, roll)
  const pipeline = startPipeline(stack, roll, {
    label: "trickle",
    interval,
    producer: "ours",
    extraEnv: {
      TABLE_RETENTION_MINUTES: String(options.retentionMinutes),
      // Minutes, not the 10 a deployment needs at least: the log's steady state must show within the run.
      TABLE_ALLOW_SHORT_RETENTION: "true",
      TABLE_VACUUM_INTERVAL_MINUTES: String(options.vacuumIntervalMinutes),
      TABLE_IDLE_COMPACTION_SECONDS: String(options.idleCompactionS)
    }
  })
  const follower = followTable(roll.lake, 20)
  const generator = await startGenerator(stack.pgUrl, roll.table)
  let generatorStopped = false
  const stopGenerator = async () => {
    if (generatorStopped) return
    generatorStopped = true
    await generator.stop()
  }
  try {
    await generator.run("warm-up", 200, 1_000, 20)
    const warm = await waitUntil(() => {
      assertRunning(pipeline)
      return follower.rows() >= generator.committed()
    }, 120_000, 50)
    if (!warm) throw new Error(`trickle: the warm-up orders did not reach the table within 120 s (${follower.rows()} of ${generator.committed()})`)

    pipeline.producer.resetPeak()
    pipeline.consumer.resetPeak()
    const machineBefore = readMachineCpu()
    const startedAt = Date.now()
    const samples: Array<Omit<TrickleSample, "orders" | "p99Ms" | "maxMs">> = []
    const sampler = setInterval(() => {
      const live = follower.liveFiles()
      const log = logListing(roll.lake)
      samples.push({
        atS: round((Date.now() - startedAt) / 1000, 1),
        version: follower.version(),
        liveFiles: live.total,
        dates: live.dates,
        maxFilesPerDate: live.max,
        logFiles: log.files,
        logCommits: log.commits,
        logCheckpoints: log.checkpoints,
        dataFilesOnDisk: dataFilesOnDisk(roll.lake)
      })
      const last = samples[samples.length - 1]!
      if (samples.length % Math.max(1, Math.round(30_000 / options.sampleMs)) === 0) {
        say(`trickle ${last.atS} s: version ${last.version}, ${last.liveFiles} live files (max ${last.maxFilesPerDate} per date), ${last.logFiles} files in _delta_log/, ${last.dataFilesOnDisk} data files on disk`)
      }
    }, options.sampleMs)
    let done: Awaited<ReturnType<Generator["run"]>>
    try {
      done = await generator.run("trickle", options.rate, options.durationMs, options.tickMs)
    } finally {
      clearInterval(sampler)
    }
    const insertsEndedAt = Date.now()
    const target = generator.committed()
    const drained = await waitUntil(() => {
      assertRunning(pipeline)
      return follower.rows() >= target
    }, options.drainTimeoutMs, 20)
    if (!drained) say(`trickle: ${target - follower.rows()} orders still missing from the table after ${options.drainTimeoutMs / 1000} s`)
    const drainedAt = Date.now()
    const liveAtDrain = follower.liveFiles()
    // The stream is quiet now: the consumer merges the partition whole once it has been idle.
    await waitUntil(() => follower.liveFiles().max <= 2, (options.idleCompactionS + 30) * 1000, 200)
    const liveAtEnd = follower.liveFiles()
    say(`trickle: ${liveAtDrain.max} live files per date when drained; ${liveAtEnd.max} after ${options.idleCompactionS} s idle (idle compaction)`)
    const machineAfter = readMachineCpu()
    const producer = { cpuCores: pipeline.producer.usage.between(startedAt, drainedAt).cpuCores, peakRssMiB: pipeline.producer.peakRssMiB() }
    const consumer = { cpuCores: pipeline.consumer.usage.between(startedAt, drainedAt).cpuCores, peakRssMiB: pipeline.consumer.peakRssMiB() }
    await stopGenerator()
    await follower.stop()
    const commits = batchCommitFigures(pipeline, startedAt, drainedAt, follower.version())
    await pipeline.stop()

    const measured = latencies(generator, "trickle", follower.landed, startedAt, options.sampleMs)
    const windowed: Array<TrickleSample> = samples.map((s, index) => {
      const list = measured.windows.get(index) ?? []
      const d = list.length > 0 ? distribution(list) : null
      return { ...s, orders: list.length, p99Ms: d?.p99 ?? null, maxMs: d?.max ?? null }
    })
    const third = Math.floor(samples.length / 3)
    const maxOf = (list: ReadonlyArray<TrickleSample>) => Math.max(0, ...list.map((s) => s.logFiles))
    const logMiddleThirdMax = maxOf(windowed.slice(third, 2 * third))
    const logLastThirdMax = maxOf(windowed.slice(2 * third))
    const judgedWindows = windowed.filter((s) => s.p99Ms !== null)
    const worstWindowP99Ms = Math.max(0, ...judgedWindows.map((s) => s.p99Ms!))
    const maxFilesPerDate = Math.max(0, ...windowed.map((s) => s.maxFilesPerDate))
    say(`trickle: DuckDB count(*) over the table's files vs one file, ${options.countRuns} runs each`)
    const filesOnDiskAtEnd = dataFilesOnDisk(roll.lake)
    const count = await compareCounts(roll.lake, options.countRuns)
    await dropTable(stack.pgUrl, roll.table)
    return {
      rate: options.rate,
      durationS: round(options.durationMs / 1000, 0),
      achievedRate: done.achievedRate,
      retentionMinutes: options.retentionMinutes,
      vacuumIntervalMinutes: options.vacuumIntervalMinutes,
      idleCompactionS: options.idleCompactionS,
      maxFilesPerDateAtDrain: liveAtDrain.max,
      maxFilesPerDateAtEnd: liveAtEnd.max,
      followMs: follower.followMs,
      inserted: measured.inserted,
      allInserted: target,
      lakeRows: measured.found,
      missing: measured.inserted - measured.found,
      latencyMs: distribution(measured.all),
      seenLatencyMs: distribution(measured.seen),
      samples: windowed,
      bounds: trickleBounds,
      verdict: {
        maxFilesPerDate,
        filesWithinBound: maxFilesPerDate <= trickleBounds.maxFilesPerDate,
        logMiddleThirdMax,
        logLastThirdMax,
        logStopsGrowing: third > 0 && logLastThirdMax <= trickleBounds.logGrowth * logMiddleThirdMax,
        worstWindowP99Ms,
        windowsOverP99: judgedWindows.filter((s) => s.p99Ms! > trickleBounds.p99Ms).length,
        windows: judgedWindows.length,
        p99WithinBound: judgedWindows.length > 0 && worstWindowP99Ms <= trickleBounds.p99Ms
      },
      commits,
      count,
      dataFilesOnDiskAtEnd: filesOnDiskAtEnd,
      producer,
      consumer,
      machineCpuCores: round((machineAfter.busy - machineBefore.busy) / ((drainedAt - startedAt) / 1000), 2),
      drainS: round((drainedAt - insertsEndedAt) / 1000, 2)
    }
  } finally {
    await stopGenerator()
    await follower.stop()
    await pipeline.stop()
  }
}
