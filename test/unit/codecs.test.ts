/**
 * The hand-written hot paths (JSON out, messages in, rows in) must agree with the schemas that
 * define the contract, on ordinary and on awkward input.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, ParseResult, Schema } from "effect"
import type { Cents } from "../../src/domain/Amount.ts"
import { clean, decodeAndClean } from "../../src/domain/Cleaning.ts"
import { decodeOrderRows, type Order, OrderMessage, OrderRow, orderToJson, orderToJsonViaSchema } from "../../src/domain/Order.ts"
import { formatIsoMicros, type Micros } from "../../src/domain/Timestamp.ts"

/** A small deterministic generator, so a failure names a reproducible case. */
const random = (() => {
  let state = 42
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  }
})()
const pick = <A>(values: ReadonlyArray<A>): A => values[Math.floor(random() * values.length)]!
const strings = [null, "", "John Doe", "Zoë \"Q\" O'Brien", "emoji 🍕", "tab\tnew\nline", "back\\slash", "\u0000ctl", "a".repeat(255)]
const centsValues = [null, 0, 1, 10, 99, 100, 1999, 22000, 33333, 9_999_999_999, -1, -1999]
const micros = [0n, 1n, 999_999n, 1_736_943_840_000_000n, 1_736_943_840_123_456n, -1n, 253_402_300_799_999_999n]

const randomOrder = (): Order => ({
  order_id: pick([1, 2, 101, 2147483647, 9007199254740991, 0, -5]),
  customer_name: pick(strings),
  restaurant_name: pick(strings),
  item: pick(strings),
  amount: pick(centsValues) as Cents | null,
  order_status: pick([null, "PLACED", "PREPARING", "DELIVERED", "CANCELLED", "odd"]),
  created_at: pick(micros) as Micros
})

const viaSchema = (value: unknown) => {
  const decoded = Schema.decodeUnknownEither(OrderMessage, { onExcessProperty: "error" })(value)
  return Either.isLeft(decoded) ? "rejected" : clean(decoded.right)
}
const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

describe("hand-written codecs agree with the schemas", () => {
  it("orderToJson is byte-for-byte the schema's encoding", () => {
    for (let i = 0; i < 5000; i++) {
      const order = randomOrder()
      expect(orderToJson(order)).toBe(orderToJsonViaSchema(order))
    }
  })

  it("decoding a message gives what the schema gives, for valid and invalid messages", () => {
    const base = JSON.parse(orderToJson(randomOrder()))
    const variants: Array<unknown> = [
      { ...base, order_id: 1.5 }, { ...base, order_id: "1" }, { ...base, order_id: 2 ** 53 }, { ...base, order_id: null },
      { ...base, amount: 1.005 }, { ...base, amount: 12.1 }, { ...base, amount: 1e9 }, { ...base, amount: "1" },
      { ...base, amount: -0.01 }, { ...base, amount: null }, { ...base, amount: 0.1 + 0.2 },
      { ...base, created_at: "2025-01-15T12:24:00" }, { ...base, created_at: "2025-01-15T12:24:00+05:30" },
      { ...base, created_at: "2025-02-30T00:00:00Z" }, { ...base, created_at: 1736943840 }, { ...base, created_at: null },
      { ...base, item: 5 }, { ...base, extra: 1 }, (({ item: _item, ...rest }) => rest)(base), [], "string", 42, null
    ]
    for (let i = 0; i < 2000; i++) variants.push(JSON.parse(orderToJson(randomOrder())))
    for (const variant of variants) {
      const fast = decodeAndClean(bytes(variant))
      const reference = viaSchema(variant)
      if (reference === "rejected") {
        expect(Either.isLeft(fast) && fast.left.reason === "invalid_schema", JSON.stringify(variant)).toBe(true)
      } else {
        expect(fast, JSON.stringify(variant)).toEqual(reference)
      }
    }
  })

  it("decoding rows gives what the OrderRow schema gives", () => {
    const rowOf = (order: Order) => ({
      ...order,
      amount: order.amount === null ? null : `${order.amount < 0 ? "-" : ""}${Math.trunc(Math.abs(order.amount) / 100)}.${String(Math.abs(order.amount) % 100).padStart(2, "0")}`,
      created_at: formatIsoMicros(order.created_at)
    })
    const rows = Array.from({ length: 2000 }, () => rowOf(randomOrder()))
    const fast = decodeOrderRows(rows)
    const reference = Schema.decodeUnknownEither(Schema.Array(OrderRow))(rows)
    expect(fast).toEqual(reference)
    expect(Either.isRight(fast)).toBe(true)
    // A Date from the driver, and a malformed NUMERIC, go through the schema.
    const withDate = [{ ...rows[0]!, created_at: new Date("2025-01-15T12:24:00.123Z") }]
    expect(decodeOrderRows(withDate)).toEqual(Schema.decodeUnknownEither(Schema.Array(OrderRow))(withDate))
    const bad = decodeOrderRows([{ ...rows[0]!, amount: "12.345" }])
    expect(Either.isLeft(bad) && ParseResult.TreeFormatter.formatErrorSync(bad.left)).toContain("NUMERIC(10,2)")
  })
})
