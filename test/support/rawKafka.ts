import { randomBytes } from "node:crypto"
import { Partitioners } from "kafkajs"
import { testKafka } from "./kafka.ts"

export interface RawRecord {
  readonly offset: string
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: Record<string, string>
}

/** Produces values byte for byte (no JSON, no encoding), as a misbehaving client would. */
export const produceRaw = async (brokers: string, topic: string, values: ReadonlyArray<Buffer | null>) => {
  const producer = testKafka(brokers, "garbage-producer").producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  try {
    await producer.send({ topic, acks: -1, messages: values.map((value, i) => ({ key: `bad-${i}`, value })) })
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

/** Every record of a one-partition topic up to its high watermark, bytes untouched. */
export const readAllRaw = async (brokers: string, topic: string, timeoutMs = 30_000): Promise<RawRecord[]> => {
  const kafka = testKafka(brokers, "raw-reader")
  const admin = kafka.admin()
  await admin.connect()
  const [offsets] = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  const end = Number(offsets?.high ?? 0)
  if (end === 0) return []
  const consumer = kafka.consumer({ groupId: `raw-reader-${randomBytes(4).toString("hex")}`, maxBytesPerPartition: 32 * 1024 * 1024 })
  const records: RawRecord[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${records.length} of ${end} records from ${topic}`)), timeoutMs)
      consumer.run({
        eachMessage: async ({ message }) => {
          records.push({
            offset: message.offset,
            key: message.key,
            value: message.value,
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))
          })
          if (Number(message.offset) + 1 >= end) {
            clearTimeout(timer)
            resolve()
          }
        }
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return records
}
