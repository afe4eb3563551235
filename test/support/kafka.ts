import { Kafka, type IHeaders, logLevel } from "kafkajs"
import { uniqueName } from "./names.ts"

/** A kafkajs client for tests; WARN keeps broker chatter out of the output but shows real problems. */
export const testKafka = (brokers: string, clientId = "integration-test"): Kafka =>
  new Kafka({ clientId, brokers: brokers.split(","), logLevel: logLevel.WARN })

/**
 * Creates topics through the admin client and waits for their leaders. Tests must do this before
 * producing: on KRaft, auto-creation races the first produce (tulios/kafkajs 1563, 1618).
 */
export const createTopics = async (brokers: string, topics: ReadonlyArray<string>, numPartitions = 1): Promise<void> => {
  const admin = testKafka(brokers, "integration-admin").admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions })), waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }
}

/** Best effort: a leftover topic on a shared broker is untidy, not wrong. */
export const deleteTopics = async (brokers: string, topics: ReadonlyArray<string>): Promise<void> => {
  const admin = testKafka(brokers, "integration-admin").admin()
  try {
    await admin.connect()
    await admin.deleteTopics({ topics: [...topics], timeout: 10_000 })
  } catch {
    // ignored, see above
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

export interface ReadMessage {
  readonly partition: number
  readonly offset: string
  readonly key: string | null
  readonly value: string | null
  readonly headers: Readonly<Record<string, string>>
}

const headerStrings = (headers: IHeaders | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k, Array.isArray(v) ? v.map(String).join(",") : String(v ?? "")]))

/**
 * Reads a topic from the beginning with a fresh consumer group until `count` messages arrived
 * (or fails after `timeoutMs`). Returns them in arrival order (per partition: offset order).
 */
export const readMessages = async (
  brokers: string,
  topic: string,
  count: number,
  timeoutMs = 30_000
): Promise<ReadMessage[]> => {
  const consumer = testKafka(brokers, "integration-reader").consumer({ groupId: uniqueName("reader") })
  const received: ReadMessage[] = []
  let timer: NodeJS.Timeout | undefined
  try {
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`read ${received.length} of ${count} messages from ${topic} within ${timeoutMs} ms`)),
        timeoutMs
      )
      if (count === 0) resolve()
      consumer.run({
        eachMessage: async ({ partition, message }) => {
          received.push({
            partition,
            offset: message.offset,
            key: message.key?.toString("utf8") ?? null,
            value: message.value?.toString("utf8") ?? null,
            headers: headerStrings(message.headers)
          })
          if (received.length >= count) resolve()
        }
      }).catch(reject)
    })
    return received
  } finally {
    if (timer) clearTimeout(timer)
    await consumer.disconnect()
  }
}
