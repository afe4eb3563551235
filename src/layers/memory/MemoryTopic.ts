import { Effect, Ref } from "effect"
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

/** Kafka's default partitioner is murmur2; any stable hash keeps an order on one partition here. */
export const partitionFor = (key: string, partitions: number) => {
  let hash = 0
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0
  return Math.abs(hash) % partitions
}

export const append = (
  topic: MemoryTopic,
  messages: ReadonlyArray<{ key: string | null; value: Uint8Array | string | null; headers?: Record<string, string> }>
) =>
  Ref.update(topic.log, (log) => {
    const next = log.map((p) => [...p])
    for (const m of messages) {
      const partition = m.key === null ? 0 : partitionFor(m.key, topic.partitions)
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
