import { Effect, Layer } from "effect"
import { formatIsoMicros } from "../../domain/Timestamp.ts"
import { orderToJsonAt } from "../../domain/Order.ts"
import { BrokerError } from "../../services/errors.ts"
import { OrderPublisher } from "../../services/OrderPublisher.ts"
import { backlogHeader, captureKeyHeader, captureKeyText } from "../../services/OrderStream.ts"
import { KafkaProducer } from "./kafkaClient.ts"

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
      const producer = yield* KafkaProducer
      return OrderPublisher.of({
        publish: (orders, options) =>
          Effect.tryPromise({
            try: () => {
              const capturedAt = new Date().toISOString()
              const flagged = options?.backlog === true ? orders.length - 1 : -1
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
                    ...(i === flagged ? { [backlogHeader]: "true" } : {})
                  }
                }
              })
              return producer.send({ topic, acks: -1, messages })
            },
            catch: (cause) => new BrokerError({ operation: "publish", cause })
          }).pipe(Effect.asVoid, Effect.withSpan("OrderPublisher.publish", { attributes: { orders: orders.length } }))
      })
    })
  )
