/**
 * The client library's own ceiling on this machine, in a process of its own like our programs:
 *   produce: read the table's first BENCH_ROWS rows as the seven-field JSON (one query), then publish them with the
 *            settings of our producer (idempotent, acks=all, one request in flight, batches of
 *            PRODUCER_BATCH_SIZE, the same four headers) and nothing else: no Schema, no cursor.
 *   consume: read the topic from the beginning with a fresh group until N messages, eachBatch, no work.
 * Prints one JSON line with the timings.
 *
 * Environment: BENCH_MODE, PG_URL, KAFKA_BROKERS, POSTGRES_TABLE, KAFKA_TOPIC, BENCH_ROWS, PRODUCER_BATCH_SIZE.
 */
import { randomBytes } from "node:crypto"
import { Kafka, logLevel, Partitioners } from "kafkajs"
import pg from "pg"
import { assertTableName } from "../scripts/stack/sql.ts"

const env = (name: string) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

const kafka = new Kafka({ clientId: "food-orders-bench-kafkajs", brokers: env("KAFKA_BROKERS").split(","), logLevel: logLevel.WARN })
const topic = env("KAFKA_TOPIC")

const produce = async () => {
  const table = assertTableName(env("POSTGRES_TABLE"))
  const batchSize = Number(process.env["PRODUCER_BATCH_SIZE"] ?? "5000")
  const client = new pg.Client({ connectionString: env("PG_URL") })
  await client.connect()
  const readStarted = Date.now()
  const { rows } = await client.query<{ order_id: number; json: string; key: string }>(`
    SELECT r.order_id, row_to_json(r)::text AS json,
           to_char(r.ts, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || '#' || r.order_id AS key
    FROM (SELECT order_id, customer_name, restaurant_name, item, amount, order_status,
                 to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at, created_at AS ts
          FROM "${table}" ORDER BY created_at, order_id LIMIT $1) r`, [Number(env("BENCH_ROWS"))])
  const readMs = Date.now() - readStarted
  await client.end()
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false
  })
  await producer.connect()
  const started = Date.now()
  for (let i = 0; i < rows.length; i += batchSize) {
    const capturedAt = new Date().toISOString()
    await producer.send({
      topic,
      acks: -1,
      messages: rows.slice(i, i + batchSize).map((r) => ({
        key: String(r.order_id),
        value: r.json,
        headers: { op: "c", source: table, captured_at: capturedAt, capture_key: r.key }
      }))
    })
  }
  const publishMs = Date.now() - started
  await producer.disconnect()
  return { rows: rows.length, readMs, publishMs }
}

const consume = async () => {
  const wanted = Number(env("BENCH_ROWS"))
  const consumer = kafka.consumer({
    groupId: `bench-kafkajs-${randomBytes(4).toString("hex")}`,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxBytes: 16 * 1024 * 1024,
    maxWaitTimeInMs: 100
  })
  const started = Date.now()
  // Timed from the end of the group join, as our consumer's rate is timed from its first batch.
  let joinedAt = 0
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joinedAt = Date.now()
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let received = 0
  const doneAt = await new Promise<number>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        received += batch.messages.length
        if (received >= wanted) resolve(Date.now())
      }
    })
  })
  await consumer.disconnect()
  return { rows: received, totalMs: doneAt - started, consumeMs: doneAt - (joinedAt || started) }
}

const mode = env("BENCH_MODE")
const run = mode === "produce" ? produce : consume
run().then(
  (result) => {
    process.stdout.write(`${JSON.stringify({ baseline: mode, ...result })}\n`)
    process.exit(0)
  },
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  }
)
