import { Effect, type Layer } from "effect"
import type { Cents } from "../../src/domain/Amount.ts"
import type { Order } from "../../src/domain/Order.ts"
import { parseIsoMicros } from "../../src/domain/Timestamp.ts"
import { consume } from "../../src/programs/consumer/consume.ts"

export const order = (id: number, createdAt: string, cents: number | null = 22000, overrides: Partial<Order> = {}): Order => ({
  order_id: id,
  customer_name: `Customer ${id}`,
  restaurant_name: "Burger Junction",
  item: "Veg Burger",
  amount: cents as Cents | null,
  order_status: "PLACED",
  created_at: parseIsoMicros(createdAt)!,
  ...overrides
})

/** One `--once` consumer run over `topic` with small, fast flush settings: what a unit test drains with. */
export const drainOnce = (topic: string, layer: Layer.Layer<any, any>) =>
  consume({
    topic,
    pollWait: "10 millis",
    flush: { maxMessages: 1000, maxBytes: 1024 * 1024, linger: "10 millis", backlogLinger: "50 millis" },
    once: true
  }).pipe(Effect.provide(layer))
