import { Effect, Layer } from "effect"
import { changeHeaders, formatChangeKey, formatLsn, type OrderChange } from "../../domain/Change.ts"
import { formatIsoMicros } from "../../domain/Timestamp.ts"
import { orderToJson, orderToJsonAt } from "../../domain/Order.ts"
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

const lastPerPartition = (
  messages: ReadonlyArray<{ readonly key: string | null; readonly partition?: number }>,
  partitionOf: ((key: string) => number) | undefined
): ReadonlySet<number> => {
  if (partitionOf === undefined) return new Set([messages.length - 1])
  const seen = new Set<number>()
  const flagged = new Set<number>()
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i]!
    const partition = message.partition ?? partitionOf(message.key!)
    if (seen.has(partition)) continue
    seen.add(partition)
    flagged.add(i)
  }
  return flagged
}

/**
 * The message of a logical-capture change (the contract in src/domain/Change.ts): key the order_id,
 * value the row after the change (null for a delete: a tombstone), position and origin in headers.
 */
export const changeMessage = (change: OrderChange, sourceTable: string, capturedAt: string) => ({
  key: String(change.orderId),
  value: change.order === null ? null : orderToJson(change.order),
  headers: {
    [changeHeaders.op]: change.op,
    [changeHeaders.lsn]: formatLsn(change.key.lsn),
    ...(change.commitTime === null ? {} : { [changeHeaders.commitTime]: formatIsoMicros(change.commitTime) }),
    ...(change.xid === null ? {} : { [changeHeaders.xid]: String(change.xid) }),
    [changeHeaders.changeKey]: formatChangeKey(change.key),
    source: sourceTable,
    captured_at: capturedAt
  } as Record<string, string>
})

interface ChangeRecord {
  readonly key: string | null
  readonly value: string | null
  readonly partition?: number
  readonly headers: Record<string, string>
}

/**
 * The messages of a truncate: one marker per partition of the topic, each sent to its partition,
 * after every change of that partition's orders before it and before every change after it. Key and
 * value null (no order); the change's headers, and `partitions` (how many went out), so the consumer
 * of partition p knows which orders its marker stands for (`partitionOfOrder`).
 */
export const truncateMarkers = (change: OrderChange, partitions: number, sourceTable: string, capturedAt: string): Array<ChangeRecord> =>
  Array.from({ length: partitions }, (_, partition) => {
    const message = changeMessage(change, sourceTable, capturedAt)
    message.headers[changeHeaders.partitions] = String(partitions)
    return { key: null, value: null, partition, headers: message.headers }
  })

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
      const { partitionCount, partitionerOf, producer } = yield* KafkaProducer
      return OrderPublisher.of({
        publish: (orders, options) =>
          Effect.gen(function*() {
            const flagged = options?.backlog === true
              ? lastPerPartition(orders.map((order) => ({ key: String(order.order_id) })), yield* partitionerOf(topic))
              : noneFlagged
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
          }).pipe(Effect.withSpan("OrderPublisher.publish", { attributes: { orders: orders.length } })),
        publishChanges: (changes, options) =>
          Effect.gen(function*() {
            if (changes.length === 0) return
            const partitions = changes.some((change) => change.op === "truncate") ? yield* partitionCount(topic) : 0
            if (partitions === undefined) {
              return yield* new BrokerError({
                operation: "publish",
                cause: new Error(`the partitions of topic ${topic} are unknown: a truncate's marker goes to each of them`)
              })
            }
            const capturedAt = new Date().toISOString()
            const messages = changes.flatMap((change): Array<ChangeRecord> =>
              change.op === "truncate" ? truncateMarkers(change, partitions, sourceTable, capturedAt) : [changeMessage(change, sourceTable, capturedAt)]
            )
            const flagged = options?.backlog === true ? lastPerPartition(messages, yield* partitionerOf(topic)) : noneFlagged
            for (const i of flagged) messages[i]!.headers[backlogHeader] = "true"
            yield* Effect.tryPromise({
              try: () => producer.send({ topic, acks: -1, messages }),
              catch: (cause) => new BrokerError({ operation: "publish", cause })
            })
          }).pipe(Effect.withSpan("OrderPublisher.publishChanges", { attributes: { changes: changes.length } }))
      })
    })
  )
