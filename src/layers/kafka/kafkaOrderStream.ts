import { Duration, Effect, Layer, Option, Queue, Runtime } from "effect"
import type { Batch, IHeaders, KafkaMessage } from "kafkajs"
import { BrokerError } from "../../services/errors.ts"
import { type Assignment, backlogHeader, type MessageBatch, OrderStream, type RawMessage } from "../../services/OrderStream.ts"
import { type KafkaSettings, makeKafka } from "./kafkaClient.ts"

interface Fetched {
  readonly batch: MessageBatch
  /** The partition's end when this was fetched: beyond the batch means more is already in the topic. */
  readonly highWatermark: bigint
  /** True once a seek made this fetch obsolete (kafkajs tells us; we ask when we take it). */
  readonly isStale: () => boolean
}

const headerText = (headers: IHeaders | undefined): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue
    out[name] = Array.isArray(value) ? value.map(String).join(",") : String(value)
  }
  return out
}

/**
 * A kafkajs message as our RawMessage. Headers are turned into text only when asked for (the tail's
 * backlog flag, dead letters): converting them eagerly made an object and a string per header for
 * every message, to read one flag per batch.
 */
class KafkaRawMessage implements RawMessage {
  #text: Record<string, string> | undefined
  readonly offset: bigint
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly #raw: IHeaders | undefined

  constructor(message: KafkaMessage) {
    this.offset = BigInt(message.offset)
    this.key = message.key
    this.value = message.value
    this.#raw = message.headers
  }

  get headers(): Record<string, string> {
    return (this.#text ??= headerText(this.#raw))
  }

  header(name: string): string | undefined {
    if (this.#text !== undefined) return this.#text[name]
    const value = this.#raw?.[name]
    if (value === undefined) return undefined
    return Array.isArray(value) ? value.map(String).join(",") : String(value)
  }
}

const toMessageBatch = (batch: Batch): MessageBatch => {
  const messages: Array<RawMessage> = batch.messages.map((m) => new KafkaRawMessage(m))
  return {
    topic: batch.topic,
    partition: batch.partition,
    messages,
    nextOffset: messages[messages.length - 1]!.offset + 1n,
    backlog: false
  }
}

const slice = (batch: MessageBatch, messages: ReadonlyArray<RawMessage>): MessageBatch => ({
  ...batch,
  messages,
  nextOffset: messages[messages.length - 1]!.offset + 1n
})

/**
 * OrderStream over a kafkajs consumer group. kafkajs pushes batches; a small queue turns that into
 * the pull the consumer program wants and bounds what is held in memory (backpressure: kafkajs
 * waits, heartbeating, until there is room). The table's positions are the source of truth: stale
 * messages are dropped, a gap triggers a seek back to the wanted offset, and every partition of a
 * new assignment is sought to the consumer's position. The group decides which partitions this
 * consumer owns (`assignment`); what was fetched for a revoked partition is dropped.
 */
export const kafkaOrderStream = (settings: KafkaSettings, topic: string, groupId: string) =>
  Layer.scoped(
    OrderStream,
    Effect.gen(function*() {
      const kafka = makeKafka(settings)
      const admin = kafka.admin()
      const consumer = kafka.consumer({
        groupId,
        allowAutoTopicCreation: false,
        maxBytesPerPartition: 1024 * 1024,
        maxBytes: 8 * 1024 * 1024,
        maxWaitTimeInMs: 100,
        // A consumer that was killed holds its group membership until the session times out, and a
        // restarted one waits for that: keep it short (the broker's minimum is 6 s).
        sessionTimeout: 10_000,
        heartbeatInterval: 1_000,
        retry: { initialRetryTime: 200, maxRetryTime: 5_000, retries: 8 }
      })
      const runPromise = Runtime.runPromise(yield* Effect.runtime<never>())
      yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            await admin.connect()
            await consumer.connect()
            await consumer.subscribe({ topic, fromBeginning: true })
          },
          catch: (cause) => new BrokerError({ operation: "connect", cause })
        }),
        () => Effect.promise(async () => {
          await consumer.disconnect().catch(() => undefined)
          await admin.disconnect().catch(() => undefined)
        })
      )

      // Eager rebalancing: everything is revoked when a rebalance starts, and the join hands out the
      // new set. Each step bumps the generation; the consumer program re-reads the table's positions.
      let assignment: Assignment = { generation: 0, partitions: new Set() }
      let crashed: Error | null = null
      let pending: Fetched | null = null
      /** Per partition, the offset after the last message handed out. */
      const delivered = new Map<number, bigint>()
      /**
       * Partitions of a new assignment, to be sought to the consumer's positions on its next poll:
       * where kafkajs would start them (the group's offsets, or its own fetch position from before
       * the rebalance, past a batch the consumer has dropped) is not necessarily the table's position,
       * and with nothing more arriving, no gap would ever show it.
       */
      let unpositioned = new Set<number>()
      const reassign = (partitions: ReadonlySet<number>) => {
        assignment = { generation: assignment.generation + 1, partitions }
        pending = null
        delivered.clear()
        unpositioned = new Set(partitions)
      }
      const removeListeners = [
        consumer.on(consumer.events.REBALANCING, () => reassign(new Set())),
        // kafkajs stops for good on an error it does not retry (a group the ACLs deny): without this,
        // the stream would wait for an assignment that never comes.
        consumer.on(consumer.events.CRASH, (event) => {
          if (event.payload.restart === false) crashed = event.payload.error
        }),
        consumer.on(consumer.events.GROUP_JOIN, (event) => {
          reassign(new Set(event.payload.memberAssignment[topic] ?? []))
          runPromise(Effect.logInfo("partitions assigned").pipe(Effect.annotateLogs({
            generation: assignment.generation,
            partitions: [...assignment.partitions].sort((a, b) => a - b).join(",")
          }))).catch(() => undefined)
        })
      ]
      yield* Effect.addFinalizer(() => Effect.sync(() => removeListeners.forEach((remove) => remove())))

      const queue = yield* Queue.bounded<Fetched>(2)
      yield* Effect.tryPromise({
        try: () =>
          consumer.run({
            autoCommit: false,
            eachBatchAutoResolve: true,
            partitionsConsumedConcurrently: 1,
            eachBatch: async ({ batch, heartbeat, isRunning, isStale }) => {
              if (batch.messages.length === 0) return
              const fetched: Fetched = { batch: toMessageBatch(batch), highWatermark: BigInt(batch.highWatermark), isStale }
              // Wait for room without missing heartbeats, or the group would evict us mid-outage.
              while (isRunning() && !isStale()) {
                const offered = await runPromise(
                  Queue.offer(queue, fetched).pipe(Effect.timeout("1 second"), Effect.option)
                )
                if (Option.isSome(offered)) return
                await heartbeat().catch(() => undefined)
              }
            }
          }),
        catch: (cause) => new BrokerError({ operation: "connect", cause })
      })

      const take = (wait: Duration.Duration) => {
        if (pending !== null) {
          const taken = pending
          pending = null
          return Effect.succeed(Option.some(taken))
        }
        return Queue.take(queue).pipe(Effect.timeoutOption(wait))
      }

      const seek = (partition: number, offset: bigint) =>
        Effect.try({
          try: () => consumer.seek({ topic, partition, offset: offset.toString() }),
          catch: (cause) => new BrokerError({ operation: "fetch", cause })
        })

      const lowWatermark = (partition: number) =>
        Effect.tryPromise({
          try: () => admin.fetchTopicOffsets(topic),
          catch: (cause) => new BrokerError({ operation: "admin", cause })
        }).pipe(Effect.map((offsets) => BigInt(offsets.find((o) => o.partition === partition)?.low ?? "0")))

      return OrderStream.of({
        assignment: Effect.sync(() => assignment),

        endOffsets: Effect.tryPromise({
          try: () => admin.fetchTopicOffsets(topic),
          catch: (cause) => new BrokerError({ operation: "admin", cause })
        }).pipe(Effect.map((offsets) => new Map(offsets.map((o) => [o.partition, BigInt(o.high)])))),

        poll: (from, maxMessages, maxWait) =>
          Effect.gen(function*() {
            if (crashed !== null) return yield* new BrokerError({ operation: "fetch", cause: crashed, fatal: true })
            const deadline = Date.now() + Duration.toMillis(Duration.decode(maxWait))
            for (const partition of unpositioned) {
              if (!assignment.partitions.has(partition)) continue
              const wanted = from.get(partition) ?? 0n
              yield* seek(partition, wanted)
              delivered.set(partition, wanted)
            }
            unpositioned = new Set()
            // A batch the program could not finish is asked for again: rewind to it.
            for (const [partition, handedOut] of delivered) {
              const wanted = from.get(partition) ?? 0n
              if (wanted >= handedOut) continue
              if (pending?.batch.partition === partition) pending = null
              delivered.set(partition, wanted)
              yield* seek(partition, wanted)
            }
            while (true) {
              const remaining = Duration.millis(Math.max(0, deadline - Date.now()))
              const next = yield* take(remaining)
              if (Option.isNone(next)) return null
              if (next.value.isStale()) continue
              const { batch } = next.value
              // Fetched before a rebalance took the partition away: its new owner reads it.
              if (!assignment.partitions.has(batch.partition)) continue
              const wanted = from.get(batch.partition) ?? 0n
              const fresh = batch.messages.filter((m) => m.offset >= wanted)
              if (fresh.length === 0) continue
              if (fresh[0]!.offset > wanted) {
                // A gap: the group's position (or a stale fetch) is ahead of the table's position. Go back,
                // unless retention already deleted what we want, which is loss we can only report.
                const low = yield* lowWatermark(batch.partition)
                if (low <= wanted) {
                  yield* seek(batch.partition, wanted)
                  continue
                }
                yield* Effect.logError("offsets deleted by retention before they reached the lake").pipe(
                  Effect.annotateLogs({ partition: batch.partition, wanted: wanted.toString(), earliest: low.toString() })
                )
              }
              let messages = fresh
              if (messages.length > maxMessages) {
                pending = { batch: slice(batch, messages.slice(maxMessages)), highWatermark: next.value.highWatermark, isStale: () => false }
                messages = messages.slice(0, maxMessages)
              }
              const tail = messages[messages.length - 1]!
              const handed: MessageBatch = {
                ...slice(batch, messages),
                backlog: tail.headers[backlogHeader] === "true" || next.value.highWatermark > tail.offset + 1n
              }
              delivered.set(handed.partition, handed.nextOffset)
              return handed
            }
          }),

        commit: (positions) =>
          Effect.tryPromise({
            try: async () => {
              // Only our own partitions: another member's are its to report.
              const owned = [...positions].filter(([partition]) => assignment.partitions.has(partition))
              if (owned.length === 0) return
              await consumer.commitOffsets(owned.map(([partition, offset]) => ({ topic, partition, offset: offset.toString() })))
            },
            catch: (cause) => new BrokerError({ operation: "commit", cause })
          })
      })
    })
  )
