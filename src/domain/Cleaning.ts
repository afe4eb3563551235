import { Either, ParseResult, Schema } from "effect"
import { type Order, OrderMessage } from "./Order.ts"
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
  const decoded = decodeOrderMessage(json)
  if (Either.isLeft(decoded)) {
    return Either.left(rejection("invalid_schema", ParseResult.TreeFormatter.formatErrorSync(decoded.left)))
  }
  return clean(decoded.right)
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
  return Either.right({ ...message, order_id: message.order_id, created_at: message.created_at })
}
