import { Duration, Effect, Layer, Option, Ref, Stream, SubscriptionRef } from "effect"
import type { CaptureKey } from "../../domain/CaptureKey.ts"
import { formatChangeKey } from "../../domain/Change.ts"
import { compareKeys, keyOf } from "../../domain/CaptureKey.ts"
import { type Order, orderToJson } from "../../domain/Order.ts"
import { tableChangeRecords } from "../../domain/TableChange.ts"
import { CursorStore } from "../../services/CursorStore.ts"
import { DeadLetters } from "../../services/DeadLetters.ts"
import { OrderPublisher } from "../../services/OrderPublisher.ts"
import { OrderSource } from "../../services/OrderSource.ts"
import { TableChangePublisher } from "../../services/TableChangePublisher.ts"
import { type Assignment, backlogHeader, captureKeyHeader, captureKeyText, type MessageBatch, OrderStream } from "../../services/OrderStream.ts"
import { formatIsoMicros } from "../../domain/Timestamp.ts"
import { append, type MemoryTopic, partitionFor } from "./MemoryTopic.ts"

/** Orders held in a Ref, served in capture-key order like the live query. */
export const memoryOrderSource = (rows: SubscriptionRef.SubscriptionRef<ReadonlyArray<Order>>) =>
  Layer.succeed(OrderSource, OrderSource.of({
    readAfter: (after, limit) =>
      Ref.get(rows).pipe(Effect.map((all) =>
        [...all]
          .filter((o) => after === null || compareKeys(keyOf(o), after) > 0)
          .sort((a, b) => compareKeys(keyOf(a), keyOf(b)))
          .slice(0, limit)
      )),
    changes: Stream.changes(rows.changes).pipe(Stream.drop(1), Stream.as(undefined))
  }))

export const memoryCursorStore = (ref: Ref.Ref<Option.Option<CaptureKey>>) =>
  Layer.succeed(CursorStore, CursorStore.of({
    load: Ref.get(ref),
    save: (cursor) => Ref.set(ref, Option.some(cursor))
  }))

/** As the Kafka publisher: a full batch flags its last message of each partition. */
export const memoryOrderPublisher = (topic: MemoryTopic) =>
  Layer.succeed(OrderPublisher, OrderPublisher.of({
    publish: (orders, options) => {
      const flagged = new Set<number>()
      if (options?.backlog === true) {
        const seen = new Set<number>()
        for (let i = orders.length - 1; i >= 0; i--) {
          const partition = partitionFor(String(orders[i]!.order_id), topic.partitions)
          if (!seen.has(partition)) flagged.add(i)
          seen.add(partition)
        }
      }
      return append(topic, orders.map((o, i) => ({
        key: String(o.order_id),
        value: orderToJson(o),
        headers: {
          [captureKeyHeader]: captureKeyText(formatIsoMicros(o.created_at), o.order_id),
          ...(flagged.has(i) ? { [backlogHeader]: "true" } : {})
        }
      })))
    },
    publishChanges: (changes) =>
      append(topic, changes.flatMap((change): Parameters<typeof append>[1] => {
        const headers = { op: change.op, change_key: formatChangeKey(change.key) }
        // A truncate: a marker to every partition, as the Kafka publisher sends it.
        if (change.op === "truncate") {
          return Array.from({ length: topic.partitions }, (_, partition) => ({
            key: null,
            value: null,
            partition,
            headers: { ...headers, partitions: String(topic.partitions) }
          }))
        }
        return [{ key: String(change.orderId), value: change.order === null ? null : orderToJson(change.order), headers }]
      }))
  }))

/** As the Kafka table publisher (the same records, markers to every partition), into in-memory topics by name. */
export const memoryTableChangePublisher = (topics: ReadonlyArray<MemoryTopic>) =>
  Layer.succeed(TableChangePublisher, TableChangePublisher.of({
    publish: (changes) =>
      Effect.forEach(topics, (topic) => {
        const capturedAt = new Date().toISOString()
        const records = changes.filter((change) => change.topic === topic.name).flatMap((change) => tableChangeRecords(change, topic.partitions, capturedAt))
        return records.length === 0 ? Effect.void : append(topic, records)
      }, { discard: true })
  }))

export const memoryDeadLetters = (topic: MemoryTopic) =>
  Layer.succeed(DeadLetters, DeadLetters.of({
    publish: (letters) =>
      append(topic, letters.map((l) => ({
        key: null,
        value: l.message.value,
        headers: { "dlq-reason": l.rejection.reason, "dlq-detail": l.rejection.detail }
      })))
  }))

/**
 * The whole topic, one generation, unless a test hands in an assignment it changes (a rebalance:
 * bump the generation with the new set).
 */
export const memoryAssignment = (topic: MemoryTopic, partitions?: ReadonlyArray<number>) =>
  Ref.make<Assignment>({ generation: 1, partitions: new Set(partitions ?? Array.from({ length: topic.partitions }, (_, p) => p)) })

export const memoryOrderStream = (topic: MemoryTopic, assignment?: Ref.Ref<Assignment>) =>
  Layer.effect(OrderStream, Effect.gen(function*() {
    const assigned = assignment ?? (yield* memoryAssignment(topic))
    let lastServed = -1
    return OrderStream.of({
      assignment: Ref.get(assigned),
      endOffsets: Ref.get(topic.log).pipe(
        Effect.map((log) => new Map(log.map((messages, partition) => [partition, BigInt(messages.length)])))
      ),
      // Looks every 10 ms until `maxWait`, like a broker fetch that returns when messages arrive.
      // Partitions in turn, from the one after the last served, as a broker fetch serves them.
      poll: (from, maxMessages, maxWait) =>
        Effect.gen(function*() {
          let waited = 0
          const waitMs = Duration.toMillis(Duration.decode(maxWait))
          while (true) {
            const log = yield* Ref.get(topic.log)
            const owned = (yield* Ref.get(assigned)).partitions
            for (let i = 1; i <= log.length; i++) {
              const partition = (lastServed + i) % log.length
              if (!owned.has(partition)) continue
              const start = Number(from.get(partition) ?? 0n)
              const messages = log[partition]!.slice(start, start + maxMessages)
              if (messages.length > 0) {
                lastServed = partition
                return {
                  topic: topic.name,
                  partition,
                  messages,
                  nextOffset: messages[messages.length - 1]!.offset + 1n,
                  backlog: messages[messages.length - 1]!.headers[backlogHeader] === "true" ||
                    start + messages.length < log[partition]!.length
                } satisfies MessageBatch
              }
            }
            if (waited >= waitMs) return null
            const step = Math.min(10, waitMs - waited)
            yield* Effect.sleep(Duration.millis(step))
            waited += step
          }
        }),
      commit: () => Effect.void
    })
  }))
