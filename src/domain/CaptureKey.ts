import { Schema } from "effect"
import type { Order } from "./Order.ts"
import { IsoTimestamp } from "./Timestamp.ts"

/**
 * The capture order: (created_at, order_id). A timestamp alone loses rows that share one across a
 * batch boundary; the pair is a total order because order_id is the primary key.
 */
export const CaptureKey = Schema.Struct({
  created_at: IsoTimestamp,
  order_id: Schema.Int
})
export type CaptureKey = typeof CaptureKey.Type

export const keyOf = (order: Order): CaptureKey => ({ created_at: order.created_at, order_id: order.order_id })

export const compareKeys = (a: CaptureKey, b: CaptureKey): number =>
  a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.order_id - b.order_id
