import { readFileSync } from "node:fs"
import { join } from "node:path"
import type pg from "pg"
import { readAllRaw } from "../../test/support/rawKafka.ts"

/**
 * For orders missing from the lake: where did they get lost? Each id with its PostgreSQL row and
 * every raw-topic record that carries it (none: the producer never captured it; some: the consumer
 * lost it), next to both programs' saved positions. Written to the kept state directory.
 */
export const diagnoseMissing = async (
  pool: pg.Pool,
  table: string,
  brokers: string,
  topic: string,
  ids: ReadonlyArray<number>,
  env: Readonly<Record<string, string>>
) => {
  const { rows } = await pool.query(
    `SELECT order_id, customer_name, amount::text AS amount,
            to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
     FROM "${table}" WHERE order_id = ANY($1::int[]) ORDER BY created_at, order_id`,
    [ids]
  )
  const records = await readAllRaw(brokers, topic, 60_000).catch((error: unknown) => {
    throw new Error(`reading ${topic} for the diagnosis: ${String(error)}`)
  })
  const byKey = new Map<string, Array<{ offset: string; headers: Record<string, string> }>>()
  for (const record of records) {
    const key = record.key?.toString("utf8") ?? ""
    const list = byKey.get(key) ?? []
    list.push({ offset: record.offset, headers: record.headers })
    byKey.set(key, list)
  }
  const readText = (path: string | undefined) => {
    if (path === undefined) return null
    try {
      return readFileSync(path, "utf8")
    } catch {
      return null
    }
  }
  const orders = rows.map((row: { order_id: number; customer_name: string; created_at: string }) => ({
    ...row,
    inRawTopic: byKey.get(String(row.order_id)) ?? []
  }))
  // Orders of one transaction share created_at (and the generator's label): lost together, shown together.
  const groups = new Map<string, { created_at: string; label: string; orders: number; inRawTopic: number }>()
  for (const order of orders) {
    const label = order.customer_name.replace(/[ .]\d+$/, "")
    const key = `${order.created_at} ${label}`
    const group = groups.get(key) ?? { created_at: order.created_at, label, orders: 0, inRawTopic: 0 }
    group.orders += 1
    if (order.inRawTopic.length > 0) group.inRawTopic += 1
    groups.set(key, group)
  }
  const neverPublished = orders.filter((o) => o.inRawTopic.length === 0).length
  return {
    summary: `${neverPublished} of ${orders.length} missing orders never reached the raw topic (lost by the producer's capture); ` +
      `${orders.length - neverPublished} reached it but not the lake (lost by the consumer)`,
    groups: [...groups.values()],
    rawTopicRecords: records.length,
    orders,
    producerCursor: readText(env["STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION"]),
    consumerCheckpoint: readText(env["STREAMING_CHECKPOINT_LOCATION"] && join(env["STREAMING_CHECKPOINT_LOCATION"], "offsets.json"))
  }
}
