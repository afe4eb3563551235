import { Schema } from "effect"
import { AmountFromNumber, AmountFromNumeric, Cents } from "./Amount.ts"
import { IsoTimestamp, Micros, RowTimestamp } from "./Timestamp.ts"

/** A captured order as the pipeline carries it: exact cents, microsecond UTC instant. */
export const Order = Schema.Struct({
  order_id: Schema.Int,
  customer_name: Schema.NullOr(Schema.String),
  restaurant_name: Schema.NullOr(Schema.String),
  item: Schema.NullOr(Schema.String),
  amount: Schema.NullOr(Cents),
  order_status: Schema.NullOr(Schema.String),
  created_at: Micros
})
export type Order = typeof Order.Type

export const orderStatuses = ["PLACED", "PREPARING", "DELIVERED", "CANCELLED"] as const

/** A row of `<roll>_orders` as `@effect/sql-pg` returns it (NUMERIC as a string). */
export const OrderRow = Schema.Struct({
  order_id: Schema.Int,
  customer_name: Schema.NullOr(Schema.String),
  restaurant_name: Schema.NullOr(Schema.String),
  item: Schema.NullOr(Schema.String),
  amount: Schema.NullOr(AmountFromNumeric),
  order_status: Schema.NullOr(Schema.String),
  created_at: RowTimestamp
})

/**
 * The Kafka message value: exactly these seven fields, in this order, nothing more.
 * `order_id` and `created_at` may be null on the wire so that cleaning, not decoding,
 * names those rejections.
 */
export const OrderMessage = Schema.Struct({
  order_id: Schema.NullOr(Schema.Int),
  customer_name: Schema.NullOr(Schema.String),
  restaurant_name: Schema.NullOr(Schema.String),
  item: Schema.NullOr(Schema.String),
  amount: Schema.NullOr(AmountFromNumber),
  order_status: Schema.NullOr(Schema.String),
  created_at: Schema.NullOr(IsoTimestamp)
})
export type OrderMessage = typeof OrderMessage.Type

const encodeMessage = Schema.encodeSync(OrderMessage)

/** The exact JSON text published for an order. */
export const orderToJson = (order: Order): string => JSON.stringify(encodeMessage(order))
