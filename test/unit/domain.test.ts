import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { AmountFromNumeric } from "../../src/domain/Amount.ts"
import { compareKeys } from "../../src/domain/CaptureKey.ts"
import { decodeAndClean } from "../../src/domain/Cleaning.ts"
import { lakeFileName, parseLakeFileName } from "../../src/domain/LakeFile.ts"
import { OrderRow, orderToJson } from "../../src/domain/Order.ts"
import { formatIsoMicros, parseIsoMicros, utcDate } from "../../src/domain/Timestamp.ts"
import { order } from "./fixtures.ts"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("the JSON message", () => {
  it("is exactly the seven reference fields, in order, amount a number, created_at in Z", () => {
    const json = orderToJson(order(101, "2025-01-15T12:24:00Z", 22000, { customer_name: "John Doe" }))
    expect(json).toBe(
      `{"order_id":101,"customer_name":"John Doe","restaurant_name":"Burger Junction","item":"Veg Burger",` +
        `"amount":220,"order_status":"PLACED","created_at":"2025-01-15T12:24:00Z"}`
    )
    expect(Object.keys(JSON.parse(json))).toEqual([
      "order_id", "customer_name", "restaurant_name", "item", "amount", "order_status", "created_at"
    ])
  })

  it("keeps cents and microseconds exact through JSON and back", () => {
    for (const cents of [1, 10, 1999, 33333, 9_999_999_999, 0, 7]) {
      const original = order(1, "2025-03-01T00:00:00.000001Z", cents)
      const back = decodeAndClean(bytes(orderToJson(original)))
      expect(back).toEqual(Either.right(original))
    }
    expect(JSON.parse(orderToJson(order(1, "2025-01-01T00:00:00Z", 1999))).amount).toBe(19.99)
    expect(JSON.parse(orderToJson(order(1, "2025-01-01T10:00:00.12345Z"))).created_at).toBe("2025-01-01T10:00:00.12345Z")
  })

  it("serialises null fields as JSON null", () => {
    const json = JSON.parse(orderToJson(order(5, "2025-01-01T00:00:00Z", null, { item: null })))
    expect(json.amount).toBeNull()
    expect(json.item).toBeNull()
  })
})

describe("database rows", () => {
  it("decode NUMERIC strings to exact cents and TIMESTAMP text or Date to microseconds", () => {
    const decode = Schema.decodeUnknownSync(OrderRow)
    const fromText = decode({
      order_id: 7, customer_name: "a", restaurant_name: "b", item: "c", amount: "340.50",
      order_status: "PLACED", created_at: "2025-01-15T12:31:10.654321Z"
    })
    expect(fromText.amount).toBe(34050)
    expect(formatIsoMicros(fromText.created_at)).toBe("2025-01-15T12:31:10.654321Z")
    const fromDate = decode({ ...fromText, amount: "0.10", created_at: new Date("2025-01-15T12:31:10.123Z") })
    expect(fromDate.amount).toBe(10)
    expect(formatIsoMicros(fromDate.created_at)).toBe("2025-01-15T12:31:10.123Z")
    expect(Schema.decodeUnknownSync(AmountFromNumeric)("-5.5")).toBe(-550)
  })
})

describe("timestamps", () => {
  it("need a zone, and normalise offsets to UTC", () => {
    expect(parseIsoMicros("2025-01-15T12:24:00")).toBeUndefined()
    expect(parseIsoMicros("2025-02-30T12:24:00Z")).toBeUndefined()
    expect(parseIsoMicros("yesterday")).toBeUndefined()
    expect(formatIsoMicros(parseIsoMicros("2025-01-15T05:30:00+05:30")!)).toBe("2025-01-15T00:00:00Z")
  })

  it("partition by the UTC date", () => {
    expect(utcDate(parseIsoMicros("2025-01-15T23:59:59.999999Z")!)).toBe("2025-01-15")
    expect(utcDate(parseIsoMicros("2025-01-16T00:30:00+01:00")!)).toBe("2025-01-15")
    expect(utcDate(parseIsoMicros("1969-12-31T23:59:59.5Z")!)).toBe("1969-12-31")
  })
})

describe("cleaning", () => {
  const valid = JSON.parse(orderToJson(order(9, "2025-01-15T12:24:00Z")))
  const reasonOf = (value: Uint8Array | null) => {
    const result = decodeAndClean(value)
    return Either.isLeft(result) ? result.left.reason : "accepted"
  }

  it.each([
    ["an empty value", new Uint8Array(0), "empty_value"],
    ["a null value", null, "empty_value"],
    ["a 1 MB value", bytes(JSON.stringify({ ...valid, item: "x".repeat(1024 * 1024) })), "value_too_large"],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), "invalid_utf8"],
    ["malformed JSON", bytes("{\"order_id\": 1,"), "invalid_json"],
    ["a JSON array", bytes("[1,2]"), "invalid_schema"],
    ["a string amount", bytes(JSON.stringify({ ...valid, amount: "220.0" })), "invalid_schema"],
    ["three decimals", bytes(JSON.stringify({ ...valid, amount: 1.005 })), "invalid_schema"],
    ["a missing field", bytes(JSON.stringify({ ...valid, item: undefined })), "invalid_schema"],
    ["an extra field", bytes(JSON.stringify({ ...valid, tip: 10 })), "invalid_schema"],
    ["a zone-less created_at", bytes(JSON.stringify({ ...valid, created_at: "2025-01-15 12:24:00" })), "invalid_schema"],
    ["a fractional order_id", bytes(JSON.stringify({ ...valid, order_id: 1.5 })), "invalid_schema"],
    ["a null order_id", bytes(JSON.stringify({ ...valid, order_id: null })), "null_order_id"],
    ["a negative amount", bytes(JSON.stringify({ ...valid, amount: -0.01 })), "negative_amount"],
    ["a null created_at", bytes(JSON.stringify({ ...valid, created_at: null })), "null_created_at"],
    ["a valid order", bytes(JSON.stringify(valid)), "accepted"],
    ["a zero amount", bytes(JSON.stringify({ ...valid, amount: 0 })), "accepted"],
    ["a null amount", bytes(JSON.stringify({ ...valid, amount: null })), "accepted"]
  ])("%s -> %s", (_name, value, expected) => {
    expect(reasonOf(value)).toBe(expected)
  })
})

describe("capture keys and lake names", () => {
  it("order by created_at, then order_id", () => {
    const a = { created_at: parseIsoMicros("2025-01-01T00:00:00Z")!, order_id: 9 }
    const b = { created_at: parseIsoMicros("2025-01-01T00:00:00Z")!, order_id: 10 }
    const c = { created_at: parseIsoMicros("2025-01-01T00:00:00.000001Z")!, order_id: 1 }
    expect(compareKeys(a, b)).toBeLessThan(0)
    expect(compareKeys(b, c)).toBeLessThan(0)
    expect(compareKeys(b, b)).toBe(0)
  })

  it("name lake files from topic, partition and offsets, and parse them back", () => {
    const id = { topic: "2025em1100506_food_orders_raw", partition: 3, firstOffset: 120n, lastOffset: 4567n }
    const name = lakeFileName(id)
    expect(name).toMatch(/^part-.*\.parquet$/)
    expect(parseLakeFileName(name)).toEqual(id)
    expect(parseLakeFileName("part-00000-abc.snappy.parquet")).toBeUndefined()
  })
})
