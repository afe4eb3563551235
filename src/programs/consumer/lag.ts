import { Effect, Metric } from "effect"
import { consumerLag, consumerNextOffset } from "../../observability/metrics.ts"
import type { PartitionPosition } from "../../services/Lake.ts"

export type Positions = ReadonlyMap<number, PartitionPosition>

export const noPosition: PartitionPosition = { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: null }

export const positionOf = (positions: Positions, partition: number): PartitionPosition => positions.get(partition) ?? noPosition

export const offsetsOf = (positions: Positions): ReadonlyMap<number, bigint> =>
  new Map([...positions].map(([p, position]) => [p, position.nextOffset]))

/** Lag per partition: what the topic holds beyond the table's position. */
export const reportLag = (positions: Positions, ends: ReadonlyMap<number, bigint>) =>
  Effect.forEach(ends, ([partition, end]) => {
    const next = positionOf(positions, partition).nextOffset
    const lag = end > next ? end - next : 0n
    return Effect.all([
      Metric.set(consumerLag.pipe(Metric.tagged("partition", String(partition))), Number(lag)),
      Metric.set(consumerNextOffset.pipe(Metric.tagged("partition", String(partition))), Number(next))
    ], { discard: true })
  }, { discard: true })

export const caughtUp = (positions: Positions, ends: ReadonlyMap<number, bigint>) =>
  [...ends].every(([partition, end]) => positionOf(positions, partition).nextOffset >= end)
