import { Either, ParseResult, Schema } from "effect"
import { centsFromNumber } from "./Amount.ts"
import { type Order, OrderMessage } from "./Order.ts"
import { parseIsoMicros } from "./Timestamp.ts"
import { rejection, type Rejection } from "./Rejection.ts"

const utf8 = new TextDecoder("utf-8", { fatal: true })
const decodeOrderMessage = Schema.decodeUnknownEither(OrderMessage, { onExcessProperty: "error", errors: "all" })

/**
 * A valid order is a few hundred bytes (its strings are VARCHAR(255)); anything far larger is
 * refused before parsing, so one huge message cannot balloon the consumer's memory.
 */
export const maxValueBytes = 64 * 1024

/** Bytes of a message value to an order, or the reason it is rejected. Never throws. */
export const decodeAndClean = (value: Uint8Array | null): Either.Either<Order, Rejection> => {
  if (value === null || value.length === 0) return Either.left(rejection("empty_value", "message value is empty"))
  if (value.length > maxValueBytes) {
    return Either.left(rejection("value_too_large", `message value is ${value.length} bytes; the limit is ${maxValueBytes}`))
  }
  let text: string
  try {
    text = utf8.decode(value)
  } catch {
    return Either.left(rejection("invalid_utf8", "message value is not valid UTF-8"))
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Either.left(rejection("invalid_json", (e as Error).message))
  }
  const fast = fastMessage(json)
  if (fast !== undefined) return clean(fast)
  const decoded = decodeOrderMessage(json)
  if (Either.isLeft(decoded)) {
    return Either.left(rejection("invalid_schema", ParseResult.TreeFormatter.formatErrorSync(decoded.left)))
  }
  return clean(decoded.right)
}

const messageKeys = ["order_id", "customer_name", "restaurant_name", "item", "amount", "order_status", "created_at"]
const isTextOrNull = (value: unknown): value is string | null => value === null || typeof value === "string"

/**
 * The well-formed message checked by hand: it runs for every message at full throughput, ~5x faster
 * than the schema. It accepts exactly what OrderMessage accepts (unit tests hold the two together);
 * anything it does not accept goes through the schema, which names what is wrong.
 */
const fastMessage = (json: unknown): OrderMessage | undefined => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined
  const record = json as Record<string, unknown>
  if (Object.keys(record).length !== messageKeys.length || !messageKeys.every((k) => Object.hasOwn(record, k))) {
    return undefined
  }
  const { order_id, customer_name, restaurant_name, item, amount, order_status, created_at } = record
  if (order_id !== null && !Number.isSafeInteger(order_id)) return undefined
  if (!isTextOrNull(customer_name) || !isTextOrNull(restaurant_name) || !isTextOrNull(item) || !isTextOrNull(order_status)) {
    return undefined
  }
  const cents = amount === null ? null : typeof amount === "number" ? centsFromNumber(amount) : undefined
  const micros = created_at === null ? null : typeof created_at === "string" ? parseIsoMicros(created_at) : undefined
  if (cents === undefined || micros === undefined) return undefined
  return { order_id: order_id as number | null, customer_name, restaurant_name, item, amount: cents, order_status, created_at: micros }
}

/** The reference design's cleaning rules, plus the one the partition needs (a created_at). */
export const clean = (message: OrderMessage): Either.Either<Order, Rejection> => {
  if (message.order_id === null) return Either.left(rejection("null_order_id", "order_id is null"))
  if (message.amount !== null && message.amount < 0) {
    return Either.left(rejection("negative_amount", `amount is negative (order_id ${message.order_id})`))
  }
  if (message.created_at === null) {
    return Either.left(rejection("null_created_at", `created_at is null (order_id ${message.order_id})`))
  }
  // Both checked non-null above: the message is an Order (no copy: this runs for every message).
  return Either.right(message as Order)
}
