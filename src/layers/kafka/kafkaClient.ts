import { Context, Effect, Layer } from "effect"
import { Kafka, logLevel, type LogEntry, type PartitionerArgs, Partitioners, type PartitionMetadata, type Producer } from "kafkajs"
import { BrokerError } from "../../services/errors.ts"
import type { KafkaSecurity } from "./kafkaSecurity.ts"

export interface KafkaSettings {
  readonly brokers: ReadonlyArray<string>
  readonly clientId: string
  /** TLS and SASL (kafkaSecurity.ts); none for PLAINTEXT. */
  readonly security?: KafkaSecurity
}

const levelNames: Record<number, string> = {
  [logLevel.ERROR]: "ERROR",
  [logLevel.WARN]: "WARN",
  [logLevel.INFO]: "INFO",
  [logLevel.DEBUG]: "DEBUG"
}

/** kafkajs logs through this: one line on stderr, warnings and errors only. */
const logCreator = () => ({ namespace, level, log }: LogEntry) => {
  const { message, timestamp: _timestamp, logger: _logger, ...extra } = log
  // Connection churn while a broker is down is reported once per attempt by our own
  // "waiting for Kafka" / retry logs; kafkajs would print it for every socket.
  if (namespace === "Connection" || namespace === "BrokerPool") return
  // Our retries are bounded on purpose (see kafkaProducerLayer); the lake de-duplicates re-sends.
  if (message.startsWith("Limiting retries for the idempotent producer")) return
  process.stderr.write(`kafkajs ${levelNames[level] ?? level} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

export const makeKafka = (settings: KafkaSettings) =>
  new Kafka({
    clientId: settings.clientId,
    brokers: [...settings.brokers],
    ...(settings.security?.ssl === undefined ? {} : { ssl: settings.security.ssl }),
    ...(settings.security?.sasl === undefined ? {} : { sasl: settings.security.sasl }),
    logLevel: logLevel.WARN,
    logCreator,
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    retry: { initialRetryTime: 200, maxRetryTime: 5_000, retries: 8 }
  })

export interface TopicSpec {
  readonly topic: string
  readonly partitions: number
  readonly config?: Readonly<Record<string, string>>
}

/**
 * Creates the topics through the admin client before anyone produces: auto-creation in KRaft races
 * with the first produce (tulios/kafkajs 1563, 1618). Existing topics are left as they are, even
 * with another partition count (more partitions would remap order_ids to partitions and break
 * per-order ordering): that is logged as a warning naming both counts.
 */
export const ensureTopics = (settings: KafkaSettings, topics: ReadonlyArray<TopicSpec>) =>
  Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const admin = makeKafka(settings).admin()
        await admin.connect()
        return admin
      },
      catch: (cause) => new BrokerError({ operation: "connect", cause })
    }),
    (admin) =>
      Effect.tryPromise({
        try: async () => {
          const existing = new Set(await admin.listTopics())
          const missing = topics.filter((t) => !existing.has(t.topic))
          const present = topics.filter((t) => existing.has(t.topic))
          if (missing.length > 0) {
            await admin.createTopics({
              waitForLeaders: true,
              topics: missing.map((t) => ({
                topic: t.topic,
                numPartitions: t.partitions,
                replicationFactor: -1,
                configEntries: Object.entries(t.config ?? {}).map(([name, value]) => ({ name, value }))
              }))
            })
          }
          if (present.length === 0) return []
          const metadata = await admin.fetchTopicMetadata({ topics: present.map((t) => t.topic) })
          return present.flatMap((t) => {
            const found = metadata.topics.find((m) => m.name === t.topic)?.partitions.length
            return found === undefined || found === t.partitions ? [] : [{ topic: t.topic, configured: t.partitions, existing: found }]
          })
        },
        catch: (cause) => new BrokerError({ operation: "admin", cause })
      }).pipe(
        Effect.tap((differing) =>
          Effect.forEach(differing, (d) =>
            Effect.logWarning(
              `topic ${d.topic} exists with ${d.existing} partitions, the configuration asks for ${d.configured}; left as it is`
            ).pipe(Effect.annotateLogs(d)), { discard: true })
        ),
        Effect.asVoid
      ),
    (admin) => Effect.promise(() => admin.disconnect())
  )

/**
 * One connected kafkajs producer per process: idempotent, so broker-side retries never duplicate.
 * Beside it, the partition count of each topic it has sent to (as its partitioner saw it), so a
 * publisher can tell which partition a key goes to (`partitionOf`).
 */
export class KafkaProducer extends Context.Tag("KafkaProducer")<KafkaProducer, {
  readonly producer: Producer
  /**
   * Which partition of `topic` a message with a given key goes to; undefined when the topic's
   * partitions cannot be had (asked of the broker once, then as the producer's partitioner sees them).
   */
  readonly partitionerOf: (topic: string) => Effect.Effect<((key: string) => number) | undefined>
  /** The partition count of `topic` as `partitionerOf` sees it; undefined when it cannot be had. */
  readonly partitionCount: (topic: string) => Effect.Effect<number | undefined>
}>() {}

/** kafkajs's partition metadata as its partitioner reads it, for a topic of `n` partitions. */
const partitionMetadata = (n: number): Array<PartitionMetadata> =>
  Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }))

export const kafkaProducerLayer = (settings: KafkaSettings) =>
  Layer.scoped(
    KafkaProducer,
    Effect.gen(function*() {
      const counts = new Map<string, number>()
      // The default partitioner (murmur2 of the key, as the Java client), noting each topic's count.
      const observing = () => {
        const partition = Partitioners.DefaultPartitioner()
        return (args: PartitionerArgs) => {
          counts.set(args.topic, args.partitionMetadata.length)
          return partition(args)
        }
      }
      const keyed = Partitioners.DefaultPartitioner()
      const producer = yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const producer = makeKafka(settings).producer({
              idempotent: true,
              createPartitioner: observing,
              maxInFlightRequests: 1,
              allowAutoTopicCreation: false,
              // Bounded so that a dead broker surfaces as an error our schedules log and retry,
              // instead of an invisible infinite retry inside kafkajs.
              retry: { initialRetryTime: 200, maxRetryTime: 5_000, retries: 8 }
            })
            await producer.connect()
            return producer
          },
          catch: (cause) => new BrokerError({ operation: "connect", cause })
        }),
        (producer) => Effect.promise(() => producer.disconnect())
      )
      const partitionerFor = (topic: string) => (key: string) =>
        keyed({ topic, partitionMetadata: partitionMetadata(counts.get(topic)!), message: { key, value: null } })
      const fetchCount = (topic: string) =>
        Effect.tryPromise(async () => {
          const admin = makeKafka(settings).admin()
          await admin.connect()
          try {
            return (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length
          } finally {
            await admin.disconnect().catch(() => undefined)
          }
        }).pipe(Effect.orElseSucceed(() => undefined))
      const partitionCount = (topic: string) =>
        Effect.gen(function*() {
          if (!counts.has(topic)) {
            const n = yield* fetchCount(topic)
            if (n === undefined || n === 0) return undefined
            if (!counts.has(topic)) counts.set(topic, n)
          }
          return counts.get(topic)
        })
      return {
        producer,
        partitionerOf: (topic: string) =>
          Effect.map(partitionCount(topic), (n) => n === undefined ? undefined : partitionerFor(topic)),
        partitionCount
      }
    })
  )
