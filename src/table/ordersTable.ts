import type { Order } from "../domain/Order.ts"
import { formatCents } from "../domain/Amount.ts"
import type { Metadata, Protocol } from "./actions.ts"

/**
 * The orders table: the lake's columns (DESIGN.md) as a Delta schema, `date` the partition column.
 * Protocol 1/2 is the simplest that carries it (lake-table.md) and what Spark creates by default.
 */
export const ordersProtocol: Protocol = { minReaderVersion: 1, minWriterVersion: 2 }

export const field = (name: string, type: string, nullable = true) => ({ name, type, nullable, metadata: {} })

export const ordersSchema = {
  type: "struct",
  fields: [
    field("order_id", "long"),
    field("customer_name", "string"),
    field("restaurant_name", "string"),
    field("item", "string"),
    field("amount", "decimal(10,2)"),
    field("order_status", "string"),
    field("created_at", "timestamp"),
    field("date", "date")
  ]
} as const

export const partitionColumn = "date"

export const ordersMetadata = (id: string, configuration: Readonly<Record<string, string>>, createdTime: number): Metadata => ({
  id,
  name: null,
  description: "food-orders-pipeline: orders captured from PostgreSQL, partitioned by the UTC date of created_at",
  format: { provider: "parquet", options: {} },
  schemaString: JSON.stringify(ordersSchema),
  partitionColumns: [partitionColumn],
  configuration,
  createdTime
})

/**
 * Our writes assume the table's columns are ours: the same names and types (nullability and
 * metadata may differ; Spark marks columns it created nullable).
 */
export const schemaDifferenceFor = (schema: { readonly fields: ReadonlyArray<{ readonly name: string; readonly type: string }> }) =>
(schemaString: string, partitionColumns: ReadonlyArray<string>): string | undefined => {
  let parsed: { fields?: Array<{ name: string; type: unknown }> }
  try {
    parsed = JSON.parse(schemaString)
  } catch {
    return "schemaString is not JSON"
  }
  const want = schema.fields.map((f) => `${f.name}:${f.type}`).join(", ")
  const have = (parsed.fields ?? []).map((f) => `${f.name}:${typeof f.type === "string" ? f.type : JSON.stringify(f.type)}`).join(", ")
  if (have !== want) return `columns are [${have}], expected [${want}]`
  if (partitionColumns.length !== 1 || partitionColumns[0] !== partitionColumn) {
    return `partitioned by [${partitionColumns.join(", ")}], expected [${partitionColumn}]`
  }
  return undefined
}

export const schemaDifference = schemaDifferenceFor(ordersSchema)

/** Delta's timestamp statistics are milliseconds (Spark reads the max with a millisecond of slack). */
export const statsTimestamp = (micros: bigint) => {
  const millis = micros >= 0n ? micros / 1000n : -((-micros + 999n) / 1000n)
  return new Date(Number(millis)).toISOString()
}

/**
 * Exact per-file statistics (engines trust them: a wrong numRecords changes Spark's count(*)):
 * row count, null counts of every column, min/max of the numeric columns. Decimal bounds are
 * written as exact JSON number literals, not through a float. Fed in chunks, so compaction can
 * stream rows through it.
 */
export class OrdersStats {
  #rows = 0
  #minId = Infinity
  #maxId = -Infinity
  #minAmount: number | null = null
  #maxAmount: number | null = null
  #minCreated: bigint | null = null
  #maxCreated: bigint | null = null
  readonly #nulls = { customer_name: 0, restaurant_name: 0, item: 0, amount: 0, order_status: 0 }

  add(orders: ReadonlyArray<Order>): this {
    const nulls = this.#nulls
    for (const o of orders) {
      if (o.order_id < this.#minId) this.#minId = o.order_id
      if (o.order_id > this.#maxId) this.#maxId = o.order_id
      if (o.amount === null) nulls.amount++
      else {
        if (this.#minAmount === null || o.amount < this.#minAmount) this.#minAmount = o.amount
        if (this.#maxAmount === null || o.amount > this.#maxAmount) this.#maxAmount = o.amount
      }
      if (this.#minCreated === null || o.created_at < this.#minCreated) this.#minCreated = o.created_at
      if (this.#maxCreated === null || o.created_at > this.#maxCreated) this.#maxCreated = o.created_at
      if (o.customer_name === null) nulls.customer_name++
      if (o.restaurant_name === null) nulls.restaurant_name++
      if (o.item === null) nulls.item++
      if (o.order_status === null) nulls.order_status++
    }
    this.#rows += orders.length
    return this
  }

  get rows() {
    return this.#rows
  }

  json(): string {
    if (this.#rows === 0) return `{"numRecords":0}`
    const bounds = (id: number, amount: number | null, created: bigint | null) =>
      [
        `"order_id":${id}`,
        ...(amount === null ? [] : [`"amount":${formatCents(amount)}`]),
        ...(created === null ? [] : [`"created_at":${JSON.stringify(statsTimestamp(created))}`])
      ].join(",")
    const n = this.#nulls
    return `{"numRecords":${this.#rows},"minValues":{${bounds(this.#minId, this.#minAmount, this.#minCreated)}},"maxValues":{${
      bounds(this.#maxId, this.#maxAmount, this.#maxCreated)
    }},"nullCount":{"order_id":0,"customer_name":${n.customer_name},"restaurant_name":${n.restaurant_name},"item":${n.item},"amount":${n.amount},"order_status":${n.order_status},"created_at":0}}`
  }
}

export const ordersStats = (orders: ReadonlyArray<Order>): string => new OrdersStats().add(orders).json()
