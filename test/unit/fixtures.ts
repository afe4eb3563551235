import type { Cents } from "../../src/domain/Amount.ts"
import type { Order } from "../../src/domain/Order.ts"
import { parseIsoMicros } from "../../src/domain/Timestamp.ts"

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
