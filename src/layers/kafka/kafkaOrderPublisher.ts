import { Effect, Layer } from "effect"
import { formatIsoMicros } from "../../domain/Timestamp.ts"
import { type Order, orderToJsonAt } from "../../domain/Order.ts"
import { BrokerError } from "../../services/errors.ts"
import { OrderPublisher } from "../../services/OrderPublisher.ts"
import { backlogHeader, captureKeyHeader, captureKeyText } from "../../services/OrderStream.ts"
import { KafkaProducer } from "./kafkaClient.ts"

/**
 * Which messages of a batch carry the backlog flag: the last one of each partition, so that whichever
 * partitions a consumer reads, each one's tail says more follows (on the batch's last message alone,
 * the flag would tell only the consumer of that message's partition). When the topic's partitions
 * cannot be had, the batch's last message.
 */
const noneFlagged: ReadonlySet<number> = new Set()

const lastPerPartition = (orders: ReadonlyArray<Order>, partitionOf: ((key: string) => number) | undefined): ReadonlySet<number> => {
  if (partitionOf === undefined) return new Set([orders.length - 1])
  const seen = new Set<number>()
  const flagged = new Set<number>()
  for (let i = orders.length - 1; i >= 0; i--) {
    const partition = partitionOf(String(orders[i]!.order_id))
    if (seen.has(partition)) continue
    seen.add(partition)
    flagged.add(i)
  }
  return flagged
}

/**
 * Publishes with acks from all in-sync replicas. The value is the exact seven-field JSON; capture
 * metadata travels in headers (DESIGN.md: never in the value). Key: the order_id, so the default
 * partitioner (murmur2) sends an order always to the same partition. The program publishes one batch
 * at a time (acknowledged before the next; idempotent, one request in flight), so each partition
 * receives its orders in capture-key order: the consumer's skip rule relies on it, per partition.
 */
export const kafkaOrderPublisher = (topic: string, sourceTable: string) =>
  Layer.effect(
    OrderPublisher,
    Effect.gen(function*() {
      const { partitionerOf, producer } = yield* KafkaProducer
      return OrderPublisher.of({
        publish: (orders, options) =>
          Effect.gen(function*() {
            const flagged = options?.backlog === true ? lastPerPartition(orders, yield* partitionerOf(topic)) : noneFlagged
            yield* Effect.tryPromise({
              try: () => {
                const capturedAt = new Date().toISOString()
                const messages = orders.map((order, i) => {
                  const createdAt = formatIsoMicros(order.created_at)
                  return {
                    key: String(order.order_id),
                    value: orderToJsonAt(order, createdAt),
                    headers: {
                      op: "c",
                      source: sourceTable,
                      captured_at: capturedAt,
                      [captureKeyHeader]: captureKeyText(createdAt, order.order_id),
                      ...(flagged.has(i) ? { [backlogHeader]: "true" } : {})
                    }
                  }
                })
                return producer.send({ topic, acks: -1, messages })
              },
              catch: (cause) => new BrokerError({ operation: "publish", cause })
            })
          }).pipe(Effect.withSpan("OrderPublisher.publish", { attributes: { orders: orders.length } }))
      })
    })
  )
