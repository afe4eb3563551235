import { Either, type ParseResult, Schema } from "effect"
import { AmountFromNumber, AmountFromNumeric, Cents, centsFromNumeric } from "./Amount.ts"
import { formatIsoMicros, IsoTimestamp, Micros, parseIsoMicros, RowTimestamp } from "./Timestamp.ts"

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

/** The exact JSON text published for an order, through the schema (the reference for orderToJson). */
export const orderToJsonViaSchema = (order: Order): string => JSON.stringify(Schema.encodeSync(OrderMessage)(order))

const text = (value: string | null) => (value === null ? "null" : JSON.stringify(value))

/**
 * The exact JSON text published for an order. Written by hand because it runs for every order at
 * full throughput (4x the schema encoder); unit tests hold it equal to orderToJsonViaSchema.
 */
export const orderToJson = (order: Order): string => orderToJsonAt(order, formatIsoMicros(order.created_at))

/** orderToJson, given formatIsoMicros(order.created_at) (the publisher needs it for a header too). */
export const orderToJsonAt = (order: Order, createdAt: string): string =>
  `{"order_id":${order.order_id},"customer_name":${text(order.customer_name)},"restaurant_name":${
    text(order.restaurant_name)
  },"item":${text(order.item)},"amount":${order.amount === null ? "null" : String(order.amount / 100)},"order_status":${
    text(order.order_status)
  },"created_at":"${createdAt}"}`

const decodeRowsViaSchema = Schema.decodeUnknownEither(Schema.Array(OrderRow))

/** One row as our capture query returns it (NUMERIC and TIMESTAMP as text), or undefined if it is not. */
const fastRow = (row: Record<string, unknown>): Order | undefined => {
  const { order_id, customer_name, restaurant_name, item, amount, order_status, created_at } = row
  if (!Number.isSafeInteger(order_id)) return undefined
  if (!isTextOrNull(customer_name) || !isTextOrNull(restaurant_name) || !isTextOrNull(item) || !isTextOrNull(order_status)) {
    return undefined
  }
  const cents = amount === null ? null : typeof amount === "string" ? centsFromNumeric(amount) : undefined
  const micros = typeof created_at === "string" ? parseIsoMicros(created_at) : undefined
  if (cents === undefined || micros === undefined) return undefined
  return { order_id: order_id as number, customer_name, restaurant_name, item, amount: cents, order_status, created_at: micros }
}

const isTextOrNull = (value: unknown): value is string | null => value === null || typeof value === "string"

/**
 * Rows of `<roll>_orders` to orders. The common shape is checked by hand (it runs per row); anything
 * else goes through the OrderRow schema, which accepts the same rows and explains the rest.
 */
export const decodeOrderRows = (rows: ReadonlyArray<unknown>): Either.Either<ReadonlyArray<Order>, ParseResult.ParseError> => {
  const orders: Array<Order> = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]
    const order = typeof row === "object" && row !== null ? fastRow(row as Record<string, unknown>) : undefined
    if (order === undefined) return decodeRowsViaSchema(rows)
    orders[i] = order
  }
  return Either.right(orders)
}
