/**
 * The sustained ceiling: insert at stepped-up rates; a rate is sustained when the lag (orders
 * committed but not yet in the lake) does not grow over the second half of the step. Lag is split
 * by the topic's high watermark into producer lag (committed, not yet in Kafka) and consumer lag
 * (in Kafka, not yet in the lake). After each step the pipeline drains; the drain rate of an
 * overloaded step is the pipeline's throughput with a backlog.
 */
import type { Generator } from "../generatorClient.ts"
import { watchHighWatermark } from "../kafka.ts"
import { assertRunning, type Pipeline } from "../pipeline.ts"
import type { Stack } from "../stack.ts"
import { readMachineCpu } from "../procStats.ts"
import { perSecond, round, slope, sleep, waitUntil } from "../stats.ts"

export interface CeilingOptions {
  readonly rates: ReadonlyArray<number>
  readonly stepMs: number
  readonly tickMs: number
  readonly drainTimeoutMs: number
  /** Lag may grow by at most this share of the offered rate (rows/s per rows/s). */
  readonly growthTolerance: number
}

export interface CeilingStep {
  readonly rate: number
  readonly achievedInsertRate: number
  /** Orders that reached the lake per second during the step. */
  readonly lakeRate: number
  /** Orders acknowledged by Kafka per second during the step. */
  readonly publishRate: number
  /** Lag growth over the second half (rows/s); ~0 when sustained. */
  readonly lagGrowthPerS: number
  readonly producerLagGrowthPerS: number
  readonly consumerLagGrowthPerS: number
  readonly lagAtEnd: number
  readonly maxLag: number
  readonly drainS: number | null
  /** Lake rows per second while draining the backlog left at the end of the step. */
  readonly drainRate: number | null
  readonly sustained: boolean
  /** The generator could not insert at the offered rate: the step says nothing about the pipeline. */
  readonly generatorLimited: boolean
  readonly producerCpuCores: number
  readonly consumerCpuCores: number
  readonly producerPeakRssMiB: number | null
  readonly consumerPeakRssMiB: number | null
  /** Busy CPU of the whole machine over the step, in cores. */
  readonly machineCpuCores: number
}

export interface CeilingResult {
  readonly steps: ReadonlyArray<CeilingStep>
  /** The highest offered rate that was sustained (0 if none). */
  readonly sustainedRowsPerS: number
  /** The best lake throughput seen: during a step or while draining a backlog. */
  readonly maxLakeRowsPerS: number
  readonly stoppedBecause: string
}

interface LagSample {
  readonly t: number
  readonly committed: number
  readonly published: number
  readonly lake: number
}

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

export const minDrainMsForRate = 1000

/** The best lake throughput seen: during a step, or while draining a backlog that took at least a second. */
export const bestLakeRate = (steps: ReadonlyArray<CeilingStep>): number =>
  Math.max(0, ...steps.map((s) => Math.max(s.lakeRate, s.drainS !== null && s.drainS * 1000 >= minDrainMsForRate ? (s.drainRate ?? 0) : 0)))

export const runCeiling = async (stack: Stack, pipeline: Pipeline, generator: Generator, options: CeilingOptions): Promise<CeilingResult> => {
  const watermark = await watchHighWatermark(stack.kafkaBrokers, pipeline.roll.topic, 100)
  const steps: Array<CeilingStep> = []
  let stoppedBecause = "all rates sustained"
  try {
    for (const rate of options.rates) {
      pipeline.producer.resetPeak()
      pipeline.consumer.resetPeak()
      const samples: Array<LagSample> = []
      const sample = () =>
        samples.push({ t: Date.now(), committed: generator.committed(), published: watermark.latest(), lake: pipeline.lake.messages() })
      const machineBefore = readMachineCpu()
      const startedAt = Date.now()
      sample()
      let running = true
      const sampler = (async () => {
        while (running) {
          await sleep(100)
          sample()
        }
      })()
      const done = await generator.run(`ceiling-${rate}`, rate, options.stepMs, options.tickMs)
      running = false
      await sampler
      sample()
      const endedAt = Date.now()
      const machineAfter = readMachineCpu()
      const end = samples[samples.length - 1]!
      const start = samples[0]!
      const secondHalf = samples.filter((s) => s.t >= startedAt + options.stepMs / 2)
      const growth = (f: (s: LagSample) => number) => round(slope(secondHalf.map((s) => [(s.t - startedAt) / 1000, f(s)] as const)), 0)
      const lagGrowthPerS = growth((s) => s.committed - s.lake)
      const target = generator.committed()
      const backlog = target - pipeline.lake.messages()
      const drained = await waitUntil(() => {
        assertRunning(pipeline)
        return pipeline.lake.messages() >= target
      }, options.drainTimeoutMs, 20)
      const drainMs = Date.now() - endedAt
      const generatorLimited = done.achievedRate < rate * 0.95
      const sustained = !generatorLimited && lagGrowthPerS <= rate * options.growthTolerance
      const result: CeilingStep = {
        rate,
        achievedInsertRate: done.achievedRate,
        lakeRate: perSecond(end.lake - start.lake, end.t - start.t),
        publishRate: perSecond(end.published - start.published, end.t - start.t),
        lagGrowthPerS,
        producerLagGrowthPerS: growth((s) => s.committed - s.published),
        consumerLagGrowthPerS: growth((s) => s.published - s.lake),
        lagAtEnd: end.committed - end.lake,
        maxLag: Math.max(...samples.map((s) => s.committed - s.lake)),
        drainS: drained ? round(drainMs / 1000, 2) : null,
        // A rate from a backlog drained in a few ms says nothing: only backlogs that took a while.
        drainRate: drained && drainMs >= minDrainMsForRate ? perSecond(backlog, drainMs) : null,
        sustained,
        generatorLimited,
        producerCpuCores: pipeline.producer.usage.between(startedAt, endedAt).cpuCores,
        consumerCpuCores: pipeline.consumer.usage.between(startedAt, endedAt).cpuCores,
        producerPeakRssMiB: pipeline.producer.peakRssMiB(),
        consumerPeakRssMiB: pipeline.consumer.peakRssMiB(),
        machineCpuCores: round((machineAfter.busy - machineBefore.busy) / ((endedAt - startedAt) / 1000), 2)
      }
      steps.push(result)
      say(`ceiling ${rate}/s: inserted ${done.achievedRate}/s, lake ${result.lakeRate}/s, lag growth ${lagGrowthPerS}/s ` +
        `(producer ${result.producerLagGrowthPerS}, consumer ${result.consumerLagGrowthPerS}), ` +
        `${sustained ? "sustained" : generatorLimited ? "generator-limited" : "NOT sustained"}; drained in ${result.drainS ?? "(timeout)"} s`)
      if (!drained) {
        stoppedBecause = `the backlog of the ${rate}/s step did not drain within ${options.drainTimeoutMs / 1000} s`
        break
      }
      if (generatorLimited) {
        stoppedBecause = `the generator could not insert ${rate}/s (reached ${done.achievedRate}/s)`
        break
      }
      if (!sustained) {
        stoppedBecause = `lag grew at ${rate}/s`
        break
      }
    }
  } finally {
    await watermark.stop()
  }
  const sustainedRates = steps.filter((s) => s.sustained).map((s) => s.rate)
  return {
    steps,
    sustainedRowsPerS: sustainedRates.length > 0 ? Math.max(...sustainedRates) : 0,
    maxLakeRowsPerS: bestLakeRate(steps),
    stoppedBecause
  }
}
