/**
 * The reference design's capture, as a baseline to compare latency with: every REFERENCE_POLL_SECONDS
 * (5, the reference's batch_interval) read `WHERE created_at > last` ordered by created_at, publish
 * every row as the same seven-field JSON (key order_id, acks=all), then move `last` to the newest
 * created_at read. It has the reference's known loss modes (late commits, ties across restarts);
 * the benchmark's single sequential writer does not trigger them. Not for production: no cursor
 * file, no retries.
 *
 * Environment: PG_URL, KAFKA_BROKERS, POSTGRES_TABLE, KAFKA_TOPIC, REFERENCE_POLL_SECONDS.
 */
import { Kafka, logLevel, Partitioners } from "kafkajs"
import pg from "pg"
import { assertTableName } from "../scripts/stack/sql.ts"

const env = (name: string) => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set`)
  return value
}

const log = (message: string, annotations: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ message, logLevel: "INFO", timestamp: new Date().toISOString(), annotations })}\n`)

const table = assertTableName(env("POSTGRES_TABLE"))
const topic = env("KAFKA_TOPIC")
const pollMs = Number(process.env["REFERENCE_POLL_SECONDS"] ?? "5") * 1000
const chunk = 5000

const query = `SELECT order_id, customer_name, restaurant_name, item, amount::text AS amount, order_status,
    to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at, created_at::text AS cursor
  FROM "${table}" WHERE created_at > $1::timestamp ORDER BY created_at, order_id`

const main = async () => {
  const client = new pg.Client({ connectionString: env("PG_URL"), application_name: "food-orders-bench-reference" })
  await client.connect()
  const kafka = new Kafka({ clientId: "food-orders-bench-reference", brokers: env("KAFKA_BROKERS").split(","), logLevel: logLevel.WARN })
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
  await producer.connect()
  let last = "1970-01-01 00:00:00"
  let stopping = false
  const stop = () => {
    stopping = true
  }
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
  log("reference poller starting", { table, topic, poll_seconds: pollMs / 1000 })
  while (!stopping) {
    const started = Date.now()
    const { rows } = await client.query<Record<string, string | number | null>>(query, [last])
    // Sent in requests of at most `chunk` messages, as a Kafka client's own batching would: one
    // kafkajs send() is one record batch, and a 5 s backlog at 5,000/s would exceed max.message.bytes.
    for (let i = 0; i < rows.length; i += chunk) {
      await producer.send({
        topic,
        acks: -1,
        messages: rows.slice(i, i + chunk).map((r) => ({
          key: String(r["order_id"]),
          value: JSON.stringify({
            order_id: r["order_id"],
            customer_name: r["customer_name"],
            restaurant_name: r["restaurant_name"],
            item: r["item"],
            amount: r["amount"] === null ? null : Number(r["amount"]),
            order_status: r["order_status"],
            created_at: r["created_at"]
          })
        }))
      })
    }
    if (rows.length > 0) last = String(rows[rows.length - 1]!["cursor"])
    log("capture cycle", { published: rows.length, batches: rows.length > 0 ? 1 : 0, ms: Date.now() - started })
    const deadline = started + pollMs
    while (!stopping && Date.now() < deadline) await new Promise((r) => setTimeout(r, Math.min(100, deadline - Date.now())))
  }
  await producer.disconnect()
  await client.end()
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  }
)
