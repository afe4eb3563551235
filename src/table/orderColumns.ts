import type { ColumnSource } from "hyparquet-writer"
import type { Order } from "../domain/Order.ts"

/**
 * Lake columns, typed for analysts (DESIGN.md): INT64 order_id, UTF8 strings, DECIMAL(10,2) amount
 * stored as unscaled INT64 cents, and a UTC-adjusted microsecond TIMESTAMP. Never nanoseconds:
 * Spark, Athena and DuckDB cannot all read those.
 */
export const orderColumns = (orders: ReadonlyArray<Order>): Array<ColumnSource> => {
  const n = orders.length
  const orderId = new BigInt64Array(n)
  const customer = new Array<string | null>(n)
  const restaurant = new Array<string | null>(n)
  const item = new Array<string | null>(n)
  const amount = new Array<bigint | null>(n)
  const status = new Array<string | null>(n)
  const createdAt = new BigInt64Array(n)
  for (let i = 0; i < n; i++) {
    const o = orders[i]!
    orderId[i] = BigInt(o.order_id)
    customer[i] = o.customer_name
    restaurant[i] = o.restaurant_name
    item[i] = o.item
    amount[i] = o.amount === null ? null : BigInt(o.amount)
    status[i] = o.order_status
    createdAt[i] = o.created_at
  }
  return [
    { name: "order_id", data: orderId, nullable: false },
    { name: "customer_name", data: customer },
    { name: "restaurant_name", data: restaurant },
    { name: "item", data: item },
    { name: "amount", data: amount },
    { name: "order_status", data: status },
    { name: "created_at", data: createdAt, nullable: false }
  ]
}

export const orderSchema = [
  { name: "root", num_children: 7 },
  { name: "order_id", type: "INT64", repetition_type: "REQUIRED" },
  { name: "customer_name", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
  { name: "restaurant_name", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
  { name: "item", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
  {
    name: "amount",
    type: "INT64",
    converted_type: "DECIMAL",
    precision: 10,
    scale: 2,
    logical_type: { type: "DECIMAL", precision: 10, scale: 2 },
    repetition_type: "OPTIONAL"
  },
  { name: "order_status", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
  {
    name: "created_at",
    type: "INT64",
    converted_type: "TIMESTAMP_MICROS",
    logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MICROS" },
    repetition_type: "REQUIRED"
  }
] as const
