import { Effect, Metric } from "effect"
import { consumerLag, consumerNextOffset } from "../../observability/metrics.ts"
import type { PartitionPosition } from "../../services/Lake.ts"

export type Positions = ReadonlyMap<number, PartitionPosition>

export const noPosition: PartitionPosition = { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: null }

export const positionOf = (positions: Positions, partition: number): PartitionPosition => positions.get(partition) ?? noPosition

export const offsetsOf = (positions: Positions): ReadonlyMap<number, bigint> =>
  new Map([...positions].map(([p, position]) => [p, position.nextOffset]))

/**
 * Lag per partition: what the topic holds beyond the table's position. `topic`: tagged with it too
 * (the topics of tables captured beside the orders table; the orders topic's series keep their
 * labels).
 */
export const reportLag = (positions: Positions, ends: ReadonlyMap<number, bigint>, topic?: string) =>
  Effect.forEach(ends, ([partition, end]) => {
    const next = positionOf(positions, partition).nextOffset
    const lag = end > next ? end - next : 0n
    const tag = <M extends Metric.Metric.Gauge<number>>(metric: M) =>
      topic === undefined ? metric.pipe(Metric.tagged("partition", String(partition))) : metric.pipe(Metric.tagged("partition", String(partition)), Metric.tagged("topic", topic))
    return Effect.all([Metric.set(tag(consumerLag), Number(lag)), Metric.set(tag(consumerNextOffset), Number(next))], { discard: true })
  }, { discard: true })

export const caughtUp = (positions: Positions, ends: ReadonlyMap<number, bigint>) =>
  [...ends].every(([partition, end]) => positionOf(positions, partition).nextOffset >= end)
