import { randomBytes } from "node:crypto"
import { Partitioners } from "kafkajs"
import { testKafka } from "./kafka.ts"

export interface RawRecord {
  readonly partition: number
  readonly offset: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Record<string, string>
}

/**
 * Produces values byte for byte (no JSON, no encoding), as a misbehaving client would; all to one
 * partition when given (so they keep their order), else spread by key.
 */
export const produceRaw = async (brokers: string, topic: string, values: ReadonlyArray<Buffer | null>, partition?: number) => {
  const producer = testKafka(brokers, "garbage-producer").producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: values.map((value, i) => ({ key: `bad-${i}`, value, ...(partition === undefined ? {} : { partition }) }))
    })
  } finally {
    await producer.disconnect()
  }
}

/** Produces records with keys and headers as given, as another client (or a replay tool) would. */
export const produceRecords = async (
  brokers: string,
  topic: string,
  records: ReadonlyArray<{ readonly key: Buffer | string | null; readonly value: Buffer | string | null; readonly headers?: Record<string, string> }>
) => {
  const producer = testKafka(brokers, "foreign-producer").producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages: records.map((r) => ({ key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) })) })
  } finally {
    await producer.disconnect()
  }
}

/** The next offset of one partition of a topic (its high watermark). */
export const partitionEnd = async (brokers: string, topic: string, partition: number): Promise<number> => {
  const admin = testKafka(brokers, "raw-reader").admin()
  await admin.connect()
  try {
    return Number((await admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.high ?? 0)
  } finally {
    await admin.disconnect()
  }
}

/** Every record of a topic up to its high watermarks (each partition in offset order, partitions one after the other), bytes untouched. */
export const readAllRaw = async (brokers: string, topic: string, timeoutMs = 30_000): Promise<RawRecord[]> => {
  const kafka = testKafka(brokers, "raw-reader")
  const admin = kafka.admin()
  await admin.connect()
  const offsets = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  const ends = new Map(offsets.map((o) => [o.partition, Number(o.high)]))
  const pending = new Set(offsets.filter((o) => Number(o.high) > 0).map((o) => o.partition))
  if (pending.size === 0) return []
  const consumer = kafka.consumer({ groupId: `raw-reader-${randomBytes(4).toString("hex")}`, maxBytesPerPartition: 32 * 1024 * 1024 })
  const byPartition = new Map<number, RawRecord[]>()
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${[...byPartition.values()].flat().length} of ${[...ends.values()].reduce((a, b) => a + b, 0)} records from ${topic}`)),
        timeoutMs
      )
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          const records = byPartition.get(partition) ?? []
          byPartition.set(partition, records)
          records.push({
            partition,
            offset: message.offset,
            key: message.key,
            value: message.value,
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))
          })
          if (Number(message.offset) + 1 >= (ends.get(partition) ?? 0)) pending.delete(partition)
          if (pending.size === 0) {
            clearTimeout(timer)
            resolve()
          }
        }
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return [...byPartition].sort(([a], [b]) => a - b).flatMap(([, records]) => records)
}
