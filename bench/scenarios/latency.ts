/**
 * Commit-to-lake latency at fixed insert rates. Each commit's time and order_ids come from the
 * generator; each lake file's first-seen time from the watcher; each order's file from DuckDB.
 * latency(order) = first time its file was seen in the lake − time its INSERT's COMMIT returned.
 * The Kafka message timestamps (set by the producer when it hands the batch to the client) split
 * that into capture (commit → handed to Kafka) and delivery (Kafka → lake).
 */
import { randomBytes } from "node:crypto"
import { Kafka, logLevel } from "kafkajs"
import type { Program } from "../children.ts"
import type { Commit, Generator } from "../generatorClient.ts"
import type { DuckDb } from "../lakeWatcher.ts"
import { assertRunning, type Pipeline } from "../pipeline.ts"
import { readMachineCpu } from "../procStats.ts"
import { type Distribution, distribution, perSecond, round, seconds, waitUntil } from "../stats.ts"

export interface LatencyStepOptions {
  readonly label: string
  readonly rate: number
  readonly durationMs: number
  readonly tickMs: number
  /** How long to wait for the last orders after the step before giving up. */
  readonly drainTimeoutMs: number
}

export interface StepPrograms {
  readonly cpuCores: number
  readonly peakRssMiB: number | null
}

export interface LatencyStep {
  readonly label: string
  readonly rate: number
  readonly durationS: number
  readonly inserted: number
  readonly achievedRate: number
  readonly transactions: number
  readonly lakeRows: number
  readonly missing: number
  readonly duplicates: number
  /** first seen in the lake − commit, per order (ms). */
  readonly latencyMs: Distribution
  /** the file's ctime (its rename) − commit: the same without this process's detection delay. */
  readonly renameLatencyMs: Distribution
  /** Kafka message timestamp − commit: capture (waiting for the poll, reading, encoding). */
  readonly captureMs: Distribution | null
  /** first seen − Kafka timestamp: publish acknowledgement, fetch, decode, Parquet, fsync, rename. */
  readonly deliveryMs: Distribution | null
  readonly files: number
  readonly avgRowsPerFile: number
  /** From the end of the inserts until the last order was in the lake. */
  readonly drainS: number
  readonly producer: StepPrograms
  readonly consumer: StepPrograms
  /** Busy CPU of the whole machine (every process, ours or not) over the step, in cores. */
  readonly machineCpuCores: number
}

interface RawStep {
  readonly options: LatencyStepOptions
  readonly commits: ReadonlyArray<Commit>
  readonly startedAt: number
  readonly insertsEndedAt: number
  readonly drainedAt: number
  readonly achievedRate: number
  readonly producer: StepPrograms
  readonly consumer: StepPrograms
  readonly machineCpuCores: number
}

const programUse = (program: Program, from: number, to: number): StepPrograms => ({
  cpuCores: program.usage.between(from, to).cpuCores,
  peakRssMiB: program.peakRssMiB()
})

/** Runs the inserts of one step and waits until all of them are in the lake. Analysis comes later (`analyseSteps`). */
export const runLatencyStep = async (pipeline: Pipeline, generator: Generator, options: LatencyStepOptions): Promise<RawStep> => {
  pipeline.producer.resetPeak()
  pipeline.consumer.resetPeak()
  const before = generator.commits.length
  const machineBefore = readMachineCpu()
  const startedAt = Date.now()
  const done = await generator.run(options.label, options.rate, options.durationMs, options.tickMs)
  const insertsEndedAt = Date.now()
  const target = generator.committed()
  const drained = await waitUntil(() => {
    assertRunning(pipeline)
    return pipeline.lake.messages() >= target
  }, options.drainTimeoutMs, 20)
  const drainedAt = Date.now()
  const machineAfter = readMachineCpu()
  if (!drained) {
    process.stderr.write(`[bench] ${options.label}: ${target - pipeline.lake.messages()} orders still missing from the lake after ${options.drainTimeoutMs / 1000} s\n`)
  }
  return {
    options,
    commits: generator.commits.slice(before).filter((c) => c.label === options.label),
    startedAt,
    insertsEndedAt,
    drainedAt,
    achievedRate: done.achievedRate,
    producer: programUse(pipeline.producer, startedAt, drainedAt),
    consumer: programUse(pipeline.consumer, startedAt, drainedAt),
    machineCpuCores: round((machineAfter.busy - machineBefore.busy) / ((drainedAt - startedAt) / 1000), 2)
  }
}

/**
 * Every message's timestamp by order_id, read back from the topic (offsets [0, high)). kafkajs sets
 * the timestamp when the producer calls send(), i.e. once the batch was read and encoded.
 */
export const readKafkaTimestamps = async (brokers: string, topic: string): Promise<Map<number, number>> => {
  const kafka = new Kafka({ clientId: "food-orders-bench-reader", brokers: brokers.split(","), logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const high = (await admin.fetchTopicOffsets(topic)).reduce((s, o) => s + Number(o.high), 0)
  await admin.disconnect()
  const stamps = new Map<number, number>()
  if (high === 0) return stamps
  const consumer = kafka.consumer({ groupId: `bench-reader-${randomBytes(4).toString("hex")}`, maxBytesPerPartition: 8 * 1024 * 1024 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let seen = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen} of ${high} messages of ${topic} in 120 s`)), 120_000)
    consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (m.key !== null) stamps.set(Number(m.key.toString()), Number(m.timestamp))
          seen += 1
        }
        if (seen >= high) {
          clearTimeout(timer)
          resolve()
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  return stamps
}

/** Turns raw steps into latency figures: which file each order landed in, and when that file was seen. */
export const analyseSteps = async (
  pipeline: Pipeline,
  raw: ReadonlyArray<RawStep>,
  duck: DuckDb,
  kafkaStamps: Map<number, number> | null
): Promise<Array<LatencyStep>> => {
  const results: Array<LatencyStep> = []
  pipeline.lake.rescan()
  const analysedAt = Date.now()
  for (const [index, step] of raw.entries()) {
    // A step's files are those first seen before the next step started: the consumer's checkpoint
    // (which ends the drain) can be read a moment before this process handles the last rename event.
    const windowEnd = raw[index + 1]?.startedAt ?? analysedAt
    // Streamed files only: a compacted file (no offset range in its name) holds rows an earlier
    // version already named in the files it replaced, so it would count them twice.
    const files = [...pipeline.lake.files.values()].filter((f) => f.firstOffset !== null && f.firstSeen >= step.startedAt && f.firstSeen < windowEnd)
    const byPath = new Map(files.map((f) => [f.path, f]))
    const { ids, files: fileOfRow } = await duck.orderIds(files.map((f) => f.path))
    let minId = Infinity
    let maxId = -Infinity
    for (const c of step.commits) {
      minId = Math.min(minId, c.first)
      maxId = Math.max(maxId, c.last)
    }
    const span = Number.isFinite(minId) ? maxId - minId + 1 : 0
    const commitAt = new Float64Array(span).fill(NaN)
    let inserted = 0
    for (const c of step.commits) {
      inserted += c.n
      // One generator connection: the ids of one INSERT are consecutive (checked, as n = last - first + 1).
      if (c.n !== c.last - c.first + 1) throw new Error(`${step.options.label}: non-consecutive ids in one commit (${c.first}..${c.last}, n=${c.n})`)
      for (let id = c.first; id <= c.last; id++) commitAt[id - minId] = c.t
    }
    const seenAt = new Float64Array(span).fill(NaN)
    const latency: Array<number> = []
    const rename: Array<number> = []
    const capture: Array<number> = []
    const delivery: Array<number> = []
    let duplicates = 0
    let lakeRows = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!
      const index = id - minId
      if (index < 0 || index >= span || Number.isNaN(commitAt[index]!)) continue
      lakeRows += 1
      if (!Number.isNaN(seenAt[index]!)) {
        duplicates += 1
        continue
      }
      const file = byPath.get(fileOfRow[i]!)!
      seenAt[index] = file.firstSeen
      const committed = commitAt[index]!
      latency.push(file.firstSeen - committed)
      if (file.ctime !== null) rename.push(file.ctime - committed)
      const stamp = kafkaStamps?.get(id)
      if (stamp !== undefined) {
        capture.push(stamp - committed)
        delivery.push(file.firstSeen - stamp)
      }
    }
    const missing = inserted - (lakeRows - duplicates)
    results.push({
      label: step.options.label,
      rate: step.options.rate,
      durationS: seconds(step.options.durationMs, 1),
      inserted,
      achievedRate: step.achievedRate,
      transactions: step.commits.length,
      lakeRows,
      missing,
      duplicates,
      latencyMs: distribution(latency),
      renameLatencyMs: distribution(rename),
      captureMs: capture.length > 0 ? distribution(capture) : null,
      deliveryMs: delivery.length > 0 ? distribution(delivery) : null,
      files: files.length,
      avgRowsPerFile: files.length > 0 ? Math.round(lakeRows / files.length) : 0,
      drainS: round((Math.max(step.insertsEndedAt, ...files.map((f) => f.firstSeen)) - step.insertsEndedAt) / 1000, 2),
      producer: step.producer,
      consumer: step.consumer,
      machineCpuCores: step.machineCpuCores
    })
  }
  return results
}

export const insertRate = (step: LatencyStep): number => perSecond(step.inserted, step.durationS * 1000)
