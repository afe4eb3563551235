/** The broker from the benchmark's side: topic high watermarks over time, and removing our topics. */
import { Kafka, logLevel } from "kafkajs"
import { onCleanup } from "./cleanup.ts"

const kafkaFor = (brokers: string) =>
  new Kafka({ clientId: "food-orders-bench", brokers: brokers.split(","), logLevel: logLevel.NOTHING, retry: { retries: 5 } })

export interface WatermarkSample {
  readonly t: number
  readonly high: number
}

/**
 * Samples the sum of the topic's high watermarks every `everyMs` (a missing topic counts 0):
 * how many messages the producer has had acknowledged, over time.
 */
export const watchHighWatermark = async (brokers: string, topic: string, everyMs = 100) => {
  const admin = kafkaFor(brokers).admin()
  await admin.connect()
  const samples: Array<WatermarkSample> = []
  let stopped = false
  const sampleOnce = async () => {
    try {
      const offsets = await admin.fetchTopicOffsets(topic)
      samples.push({ t: Date.now(), high: offsets.reduce((sum, o) => sum + Number(o.high), 0) })
    } catch {
      // not created yet, or a transient error: the next sample will tell
    }
  }
  // The first sample before returning, so "latest" is never a stale 0.
  await sampleOnce()
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now()
      await sampleOnce()
      await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - started))))
    }
  })()
  const stop = async () => {
    if (stopped) return
    stopped = true
    await loop
    await admin.disconnect().catch(() => undefined)
  }
  onCleanup(`stop watching ${topic}`, stop)
  return {
    samples,
    latest: () => samples[samples.length - 1]?.high ?? 0,
    /** First time the watermark reached `count`, or null. */
    reachedAt: (count: number) => samples.find((s) => s.high >= count)?.t ?? null,
    /** First time the watermark moved above its starting value. */
    firstMoveAt: (from = 0) => samples.find((s) => s.high > from)?.t ?? null,
    sampleOnce,
    stop
  }
}

export const topicHighWatermark = async (brokers: string, topic: string): Promise<number> => {
  const admin = kafkaFor(brokers).admin()
  await admin.connect()
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, o) => sum + Number(o.high), 0)
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

/** The raw topic's own setting (src/layers/live.ts): one send() of a 5,000-order batch is one ~1.5 MB record batch. */
export const rawTopicConfig = [{ name: "max.message.bytes", value: String(8 * 1024 * 1024) }]

/** A one-partition topic configured like the pipeline's raw topic. */
export const createTopic = async (brokers: string, topic: string): Promise<void> => {
  const admin = kafkaFor(brokers).admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1, configEntries: rawTopicConfig }], waitForLeaders: true })
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

/** Deletes the topics at cleanup time (best effort: a leftover topic on a shared broker is untidy, not wrong). */
export const deleteTopicsLater = (brokers: string, topics: ReadonlyArray<string>): void => {
  onCleanup(`delete topics ${topics.join(", ")}`, async () => {
    const admin = kafkaFor(brokers).admin()
    try {
      await admin.connect()
      const existing = new Set(await admin.listTopics())
      const ours = topics.filter((t) => existing.has(t))
      if (ours.length > 0) await admin.deleteTopics({ topics: ours, timeout: 10_000 })
    } catch {
      // best effort
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  })
}
