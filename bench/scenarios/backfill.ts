/**
 * Backfill: N orders already in PostgreSQL, both programs started together; time until every one of
 * them is in the lake. Per stage: capture+publish from the topic's high watermark over time (and the
 * producer's `capture cycle` log), consume+write from the lake files as they appear (and the
 * consumer's `batch written` logs). Peak RSS of each program from the kernel (VmHWM).
 */
import { statSync } from "node:fs"
import type { Program } from "../children.ts"
import { createTable, loadHistory } from "../database.ts"
import { watchHighWatermark } from "../kafka.ts"
import { type DuckDb } from "../lakeWatcher.ts"
import { assertRunning, createRollTopics, newRoll, type Roll, startPipeline } from "../pipeline.ts"
import type { Stack } from "../stack.ts"
import { perSecond, round, seconds, sleep, waitUntil } from "../stats.ts"
import { readCpuSeconds } from "../procStats.ts"

export interface BackfillOptions {
  readonly rows: number
  readonly days: number
  readonly interval: number | null
  readonly timeoutMs: number
  readonly cpuProfileDir?: string
}

export interface ProgramFigures {
  readonly peakRssMiB: number | null
  readonly cpuSeconds: number
  /** CPU used / wall time over the measured span: 1.0 = one core busy. */
  readonly cpuCores: number
}

export interface BackfillRun {
  readonly rows: number
  readonly loadSeconds: number
  readonly lakeRows: number
  readonly distinctIds: number
  /** Spawn of both programs until the last order's file was seen. */
  readonly endToEndSeconds: number
  readonly endToEndRowsPerS: number
  /** From the first message in the topic to the last file: the pipeline without process startup. */
  readonly pipelineSeconds: number
  readonly pipelineRowsPerS: number
  readonly startup: { readonly producerToFirstMessageS: number | null; readonly consumerToFirstFileS: number | null }
  readonly capturePublish: {
    readonly rowsPerS: number
    readonly seconds: number
    /** From the producer's own `capture cycle` logs. */
    readonly cycles: number
    readonly cycleMs: number
    readonly cycleRowsPerS: number
  }
  readonly consumeWrite: {
    readonly rowsPerS: number
    readonly seconds: number
    /** From `batch written`: batches, and the time spent inside them (decode, clean, Parquet, fsync, checkpoint). */
    readonly batches: number
    readonly busyMs: number
    readonly busyRowsPerS: number
    readonly meanBatchMessages: number
  }
  /**
   * The cost of the table's commits, from the consumer's logs: versions made by batches (`batch
   * written` with a version) and the time inside them (`ms`: Parquet, files, commit), and by
   * compaction (`compacted`). Absent in results from before the lake was a table.
   */
  readonly commits?: {
    readonly batchCommits: number
    readonly batchWriteMs: number
    readonly msPerCommit: number
    readonly compactionCommits: number
    readonly compactedInputFiles: number
    readonly finalVersion: number | null
  }
  readonly files: {
    readonly count: number
    readonly dates: number
    readonly avgRows: number
    readonly minRows: number
    readonly maxRows: number
    readonly avgBytes: number
    readonly totalBytes: number
  }
  readonly producer: ProgramFigures
  readonly consumer: ProgramFigures
  readonly broker: { readonly cpuSeconds: number | null; readonly cpuCores: number | null }
  readonly machineCpuCores: number
  readonly exitCodes: { readonly producer: number | null; readonly consumer: number | null }
}

const programFigures = (program: Program, from: number, to: number, peak: number | null): ProgramFigures => {
  const used = program.usage.between(from, to)
  return { peakRssMiB: peak, cpuSeconds: used.cpuSeconds, cpuCores: used.cpuCores }
}

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

/** Loads the table (returned for the native baselines, which move the same rows) and runs one backfill. */
export const prepareBackfillTable = async (stack: Stack, options: BackfillOptions): Promise<{ roll: Roll; loadSeconds: number }> => {
  const roll = newRoll(stack, "bf")
  await createTable(stack.pgUrl, roll.table, false)
  const loadSeconds = await loadHistory(stack.pgUrl, roll.table, options.rows, options.days)
  say(`backfill: ${options.rows} orders loaded into ${roll.table} in ${loadSeconds.toFixed(1)} s`)
  return { roll, loadSeconds }
}

export const runBackfill = async (
  stack: Stack,
  roll: Roll,
  loadSeconds: number,
  options: BackfillOptions,
  duck: DuckDb,
  machineCpu: () => { busy: number; total: number }
): Promise<BackfillRun> => {
  await createRollTopics(stack, roll)
  const watermark = await watchHighWatermark(stack.kafkaBrokers, roll.topic, 100)
  const machineBefore = machineCpu()
  const brokerCpuBefore = stack.brokerPid === null ? null : readCpuSeconds(stack.brokerPid)
  const pipeline = startPipeline(stack, roll, {
    label: "backfill",
    interval: options.interval,
    producer: "ours",
    ...(options.cpuProfileDir === undefined ? {} : { cpuProfileDir: options.cpuProfileDir })
  })
  const t0 = pipeline.startedAt
  const done = await waitUntil(() => {
    assertRunning(pipeline)
    return pipeline.lake.messages() >= options.rows
  }, options.timeoutMs, 50)
  if (!done) {
    throw new Error(`backfill: only ${pipeline.lake.messages()} of ${options.rows} orders reached the lake within ${options.timeoutMs / 1000} s`)
  }
  // The checkpoint can be read a moment before this process handles the last rename event.
  await sleep(100)
  pipeline.lake.rescan()
  const files = [...pipeline.lake.files.values()]
  const tEnd = Math.max(...files.map((f) => f.firstSeen))
  const machineAfter = machineCpu()
  const machineWallS = (Date.now() - t0) / 1000
  const brokerCpuAfter = stack.brokerPid === null ? null : readCpuSeconds(stack.brokerPid)
  const producerPeak = pipeline.producer.peakRssMiB()
  const consumerPeak = pipeline.consumer.peakRssMiB()
  await watermark.sampleOnce()
  await watermark.stop()
  const exitCodes = await pipeline.stop()

  const tFirstMessage = watermark.firstMoveAt(0)
  const tAllPublished = watermark.reachedAt(options.rows)
  const tFirstFile = Math.min(...files.map((f) => f.firstSeen))
  const cycles = pipeline.producer.logs.filter((l) => l.message === "capture cycle" && Number(l.annotations["published"]) > 0)
  const cycleMs = cycles.reduce((s, l) => s + Number(l.annotations["ms"]), 0)
  const cyclePublished = cycles.reduce((s, l) => s + Number(l.annotations["published"]), 0)
  const batches = pipeline.consumer.logs.filter((l) => l.message === "batch written")
  // Busy: decoding and cleaning while the batch filled, plus writing it (not the flush policy's waits).
  const busyMs = batches.reduce((s, l) => s + Number(l.annotations["ms"]) + Number(l.annotations["decode_ms"] ?? 0), 0)
  const batchMessages = batches.reduce((s, l) => s + Number(l.annotations["messages"]), 0)

  const committedBatches = batches.filter((l) => l.annotations["version"] !== undefined && l.annotations["version"] !== "none")
  const compactions = pipeline.consumer.logs.filter((l) => l.message === "compacted")
  const batchWriteMs = committedBatches.reduce((s, l) => s + Number(l.annotations["ms"] ?? 0), 0)
  const versions = [...committedBatches, ...compactions].map((l) => Number(l.annotations["version"])).filter(Number.isFinite)
  const commits = {
    batchCommits: committedBatches.length,
    batchWriteMs: Math.round(batchWriteMs),
    msPerCommit: committedBatches.length > 0 ? round(batchWriteMs / committedBatches.length, 1) : 0,
    compactionCommits: compactions.length,
    compactedInputFiles: compactions.reduce((s, l) => s + Number(l.annotations["files"] ?? 0), 0),
    finalVersion: versions.length > 0 ? Math.max(...versions) : null
  }

  const summary = await duck.summary(files.map((f) => f.path))
  const rowsPerFile = files.map((f) => summary.perFile.get(f.path) ?? 0)
  if (process.env["BENCH_DEBUG"]) for (const [i, f] of files.entries()) say(`  ${f.date} ${f.name} ${rowsPerFile[i]} rows, ${f.bytes} bytes, seen ${f.firstSeen - t0} ms`)
  const bytes = files.map((f) => f.bytes ?? statSync(f.path).size)
  const totalBytes = bytes.reduce((a, b) => a + b, 0)
  const pipelineMs = tFirstMessage === null ? NaN : tEnd - tFirstMessage
  const publishMs = tFirstMessage === null || tAllPublished === null ? NaN : tAllPublished - tFirstMessage
  const writeMs = tEnd - tFirstFile
  const wallS = (tEnd - t0) / 1000
  return {
    rows: options.rows,
    loadSeconds: round(loadSeconds, 1),
    lakeRows: summary.rows,
    distinctIds: summary.distinctIds,
    endToEndSeconds: seconds(tEnd - t0),
    endToEndRowsPerS: perSecond(options.rows, tEnd - t0),
    pipelineSeconds: seconds(pipelineMs),
    pipelineRowsPerS: perSecond(options.rows, pipelineMs),
    startup: {
      producerToFirstMessageS: tFirstMessage === null ? null : seconds(tFirstMessage - t0),
      consumerToFirstFileS: seconds(tFirstFile - t0)
    },
    capturePublish: {
      rowsPerS: perSecond(options.rows, publishMs),
      seconds: seconds(publishMs),
      cycles: cycles.length,
      cycleMs,
      cycleRowsPerS: perSecond(cyclePublished, cycleMs)
    },
    consumeWrite: {
      // The first file is written once the first batch was consumed, so count the rows after it.
      rowsPerS: perSecond(options.rows - (rowsPerFile[files.findIndex((f) => f.firstSeen === tFirstFile)] ?? 0), writeMs),
      seconds: seconds(writeMs),
      batches: batches.length,
      busyMs,
      busyRowsPerS: perSecond(batchMessages, busyMs),
      meanBatchMessages: batches.length > 0 ? Math.round(batchMessages / batches.length) : 0
    },
    commits,
    files: {
      count: files.length,
      dates: new Set(files.map((f) => f.date)).size,
      avgRows: files.length > 0 ? Math.round(summary.rows / files.length) : 0,
      minRows: Math.min(...rowsPerFile),
      maxRows: Math.max(...rowsPerFile),
      avgBytes: files.length > 0 ? Math.round(totalBytes / files.length) : 0,
      totalBytes
    },
    producer: programFigures(pipeline.producer, t0, tEnd, producerPeak),
    consumer: programFigures(pipeline.consumer, t0, tEnd, consumerPeak),
    broker: {
      cpuSeconds: brokerCpuBefore === null || brokerCpuAfter === null ? null : round(brokerCpuAfter - brokerCpuBefore, 1),
      cpuCores: brokerCpuBefore === null || brokerCpuAfter === null ? null : round((brokerCpuAfter - brokerCpuBefore) / wallS, 2)
    },
    machineCpuCores: round((machineAfter.busy - machineBefore.busy) / machineWallS, 2),
    exitCodes
  }
}
