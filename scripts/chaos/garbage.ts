import { Kafka, logLevel, Partitioners } from "kafkajs"
import { readAllRaw } from "../../test/support/rawKafka.ts"
import type { Random } from "./random.ts"
import { sleep, throwIfAborted } from "./timing.ts"

/**
 * Bad messages written straight into the raw topic, as a misbehaving client would, and the check
 * that each one reached the dead-letter topic with the right `dlq-reason`. Keys are unique per run
 * (`chaos-garbage-<n>`), so a letter is matched to its message even when a crash made the consumer
 * send it twice (dead letters are at-least-once: they go out before the checkpoint moves).
 */
export interface GarbageKind {
  readonly kind: string
  readonly value: (n: number) => Buffer | null
  /** The `dlq-reason` the consumer must give it (src/domain/Rejection.ts). */
  readonly reason: string
}

const order = (n: number, changes: Record<string, unknown>) =>
  Buffer.from(JSON.stringify({
    // Ids far above anything the table's SERIAL reaches in a run: if one leaked into the lake it
    // would show up as "unexpected", not hide among real orders.
    order_id: 900_000_000 + n,
    customer_name: "garbage",
    restaurant_name: "Nowhere",
    item: "Nothing",
    amount: 1.5,
    order_status: "PLACED",
    created_at: "2025-06-01T12:00:00Z",
    ...changes
  }))

export const garbageKinds: ReadonlyArray<GarbageKind> = [
  { kind: "malformed JSON", value: (n) => Buffer.from(`{"order_id": ${n}, "amount": `), reason: "invalid_json" },
  { kind: "null order_id", value: (n) => order(n, { order_id: null }), reason: "null_order_id" },
  { kind: "negative amount", value: (n) => order(n, { amount: -12.5 }), reason: "negative_amount" },
  { kind: "zone-less created_at", value: (n) => order(n, { created_at: "2025-06-01 12:00:00" }), reason: "invalid_schema" },
  { kind: "invalid UTF-8", value: () => Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), reason: "invalid_utf8" },
  { kind: "empty value", value: () => Buffer.alloc(0), reason: "empty_value" },
  { kind: "null value", value: () => null, reason: "empty_value" },
  { kind: "wrong types", value: (n) => order(n, { amount: "1.50" }), reason: "invalid_schema" }
]

export interface InjectedGarbage {
  readonly key: string
  readonly kind: string
  readonly reason: string
  readonly atMs: number
  /** Sends it took: more than one means the broker was away (a retry may have written it twice). */
  readonly attempts: number
}

/**
 * Sends one message to `topic`, retrying through a broker outage (up to `timeoutMs`). A fresh
 * client per attempt: a kafkajs producer that lost its broker can stay confused about metadata.
 */
const sendOnce = async (brokers: string, topic: string, key: string, value: Buffer | null, kind: string) => {
  const kafka = new Kafka({
    clientId: "chaos-garbage",
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 5000,
    retry: { retries: 2, initialRetryTime: 200 }
  })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
  try {
    await producer.connect()
    await producer.send({ topic, acks: -1, messages: [{ key, value, headers: { "chaos-kind": kind } }] })
  } finally {
    await producer.disconnect().catch(() => undefined)
  }
}

/** Whether the producer has created the raw topic yet (garbage before it would auto-create it wrongly). */
export const topicExists = async (brokers: string, topic: string): Promise<boolean> => {
  const admin = new Kafka({ clientId: "chaos-admin", brokers: brokers.split(","), logLevel: logLevel.NOTHING, retry: { retries: 1 } }).admin()
  try {
    await admin.connect()
    return (await admin.listTopics()).includes(topic)
  } catch {
    return false
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

export class GarbageInjector {
  readonly injected: Array<InjectedGarbage> = []
  private next = 0
  private queue: Promise<void> = Promise.resolve()
  private readonly firstKind: number
  private readonly failures: Array<unknown> = []

  constructor(
    private readonly brokers: string,
    private readonly topic: string,
    private readonly startedAt: number,
    rng: Random,
    private readonly abort: AbortSignal,
    private readonly timeoutMs = 180_000
  ) {
    this.firstKind = rng.int(0, garbageKinds.length - 1)
  }

  /**
   * Injects one message of the next kind (kinds cycle from a seeded start, so a run of eight or more
   * covers them all). Injections are serialised; the returned promise settles when this one is in
   * (or has failed: see settled()).
   */
  inject(): Promise<void> {
    const n = this.next++
    const kind = garbageKinds[(n + this.firstKind) % garbageKinds.length]!
    const key = `chaos-garbage-${n + 1}`
    const run = async () => {
      const deadline = Date.now() + this.timeoutMs
      let attempts = 0
      while (!(await topicExists(this.brokers, this.topic))) {
        throwIfAborted(this.abort)
        if (Date.now() > deadline) throw new Error(`topic ${this.topic} did not appear within ${this.timeoutMs / 1000} s`)
        await sleep(500, this.abort)
      }
      for (;;) {
        throwIfAborted(this.abort)
        attempts += 1
        try {
          await sendOnce(this.brokers, this.topic, key, kind.value(n + 1), kind.kind)
          break
        } catch (error) {
          if (Date.now() > deadline) throw new Error(`could not inject ${key} (${kind.kind}) within ${this.timeoutMs / 1000} s: ${String(error)}`)
          await sleep(500, this.abort)
        }
      }
      this.injected.push({ key, kind: kind.kind, reason: kind.reason, atMs: Date.now() - this.startedAt, attempts })
    }
    this.queue = this.queue.then(() => run().catch((error: unknown) => {
      this.failures.push(error)
    }))
    return this.queue
  }

  /** Resolves once every injection asked for so far is done; rejects with the first failure. */
  async settled(): Promise<void> {
    await this.queue
    if (this.failures.length > 0) throw this.failures[0]
  }
}

export interface DeadLetterCheck {
  readonly records: number
  /** Injected messages with at least one letter. */
  readonly matched: number
  /** Injected messages with no letter. */
  readonly missingKeys: ReadonlyArray<string>
  /** Letters whose dlq-reason differs from what the message deserves. */
  readonly wrongReason: ReadonlyArray<{ key: string; expected: string; got: string }>
  /** Letters for messages we did not inject: a real order dead-lettered would be a loss. */
  readonly foreign: ReadonlyArray<{ key: string | null; reason: string | undefined }>
  /** Letters beyond one per injected key (a crash between the DLQ send and the checkpoint). */
  readonly repeated: number
}

/** Reads the whole dead-letter topic and matches it against what was injected. */
export const checkDeadLetters = async (
  brokers: string,
  dlqTopic: string,
  injected: ReadonlyArray<InjectedGarbage>
): Promise<DeadLetterCheck> => {
  const records = (await topicExists(brokers, dlqTopic)) ? await readAllRaw(brokers, dlqTopic, 60_000) : []
  const expected = new Map(injected.map((g) => [g.key, g]))
  const seen = new Map<string, number>()
  const wrongReason: Array<{ key: string; expected: string; got: string }> = []
  const foreign: Array<{ key: string | null; reason: string | undefined }> = []
  for (const record of records) {
    const key = record.key?.toString("utf8") ?? null
    const reason = record.headers["dlq-reason"]
    const garbage = key === null ? undefined : expected.get(key)
    if (garbage === undefined) {
      foreign.push({ key, reason })
      continue
    }
    seen.set(garbage.key, (seen.get(garbage.key) ?? 0) + 1)
    if (reason !== garbage.reason) wrongReason.push({ key: garbage.key, expected: garbage.reason, got: String(reason) })
  }
  return {
    records: records.length,
    matched: seen.size,
    missingKeys: injected.filter((g) => !seen.has(g.key)).map((g) => g.key),
    wrongReason,
    foreign,
    repeated: [...seen.values()].reduce((a, n) => a + n - 1, 0)
  }
}
