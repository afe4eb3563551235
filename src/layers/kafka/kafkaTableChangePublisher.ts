import { Effect, Layer } from "effect"
import { isMarker, type TableChangeRecord, tableChangeRecords } from "../../domain/TableChange.ts"
import { BrokerError } from "../../services/errors.ts"
import { backlogHeader } from "../../services/OrderStream.ts"
import { TableChangePublisher } from "../../services/TableChangePublisher.ts"
import { KafkaProducer } from "./kafkaClient.ts"

/**
 * Publishes with acks from all in-sync replicas, every topic of the batch in one request
 * (idempotent producer, one request in flight: each partition keeps the batch's order).
 */
export const kafkaTableChangePublisher = Layer.effect(
  TableChangePublisher,
  Effect.gen(function*() {
    const { partitionCount, partitionerOf, producer } = yield* KafkaProducer
    return TableChangePublisher.of({
      publish: (changes, options) =>
        Effect.gen(function*() {
          if (changes.length === 0) return
          const capturedAt = new Date().toISOString()
          const byTopic = new Map<string, Array<TableChangeRecord>>()
          for (const change of changes) {
            let records = byTopic.get(change.topic)
            if (records === undefined) byTopic.set(change.topic, records = [])
            const partitions = isMarker(change.op) ? yield* partitionCount(change.topic) : 1
            if (partitions === undefined) {
              return yield* new BrokerError({
                operation: "publish",
                cause: new Error(`the partitions of topic ${change.topic} are unknown: a ${change.op} marker goes to each of them`)
              })
            }
            records.push(...tableChangeRecords(change, partitions, capturedAt))
          }
          if (options?.backlog === true) {
            // The last message of each partition says more follows (the consumer keeps its batch open).
            for (const [topic, records] of byTopic) {
              const partitionOf = yield* partitionerOf(topic)
              const seen = new Set<number>()
              for (let i = records.length - 1; i >= 0; i--) {
                const record = records[i]!
                const partition = record.partition ?? (partitionOf === undefined ? -1 : partitionOf(record.key!))
                if (seen.has(partition)) continue
                seen.add(partition)
                record.headers[backlogHeader] = "true"
              }
            }
          }
          yield* Effect.tryPromise({
            try: () => producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) }),
            catch: (cause) => new BrokerError({ operation: "publish", cause })
          })
        }).pipe(Effect.withSpan("TableChangePublisher.publish", { attributes: { changes: changes.length } }))
    })
  })
)
