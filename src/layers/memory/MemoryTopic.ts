import { Effect, Ref } from "effect"
import { partitionOfKey } from "../../domain/orderPartition.ts"
import type { RawMessage } from "../../services/OrderStream.ts"

/** An in-memory stand-in for a Kafka topic: partitions of append-only logs. */
export interface MemoryTopic {
  readonly name: string
  readonly partitions: number
  readonly log: Ref.Ref<ReadonlyArray<ReadonlyArray<RawMessage>>>
}

export const makeMemoryTopic = (name: string, partitions = 1) =>
  Effect.map(Ref.make<ReadonlyArray<ReadonlyArray<RawMessage>>>(Array.from({ length: partitions }, () => [])), (log) => ({
    name,
    partitions,
    log
  } satisfies MemoryTopic))

const encoder = new TextEncoder()

/** Kafka's default partitioner (murmur2), as the broker's producer: a truncate's marker relies on it. */
export const partitionFor = partitionOfKey

export const append = (
  topic: MemoryTopic,
  messages: ReadonlyArray<{ key: string | null; value: Uint8Array | string | null; partition?: number; headers?: Record<string, string> }>
) =>
  Ref.update(topic.log, (log) => {
    const next = log.map((p) => [...p])
    for (const m of messages) {
      const partition = m.partition ?? (m.key === null ? 0 : partitionFor(m.key, topic.partitions))
      const target = next[partition]!
      target.push({
        offset: BigInt(target.length),
        key: m.key === null ? null : encoder.encode(m.key),
        value: typeof m.value === "string" ? encoder.encode(m.value) : m.value,
        headers: m.headers ?? {}
      })
    }
    return next
  })
