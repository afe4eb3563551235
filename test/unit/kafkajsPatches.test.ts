/**
 * The kafkajs patches (src/layers/kafka/patches, swapped in by scripts/build.mjs) must encode the
 * same bytes and group the same way as the kafkajs 2.2.4 code they replace.
 */
import { createRequire } from "node:module"
import { describe, expect, it } from "vitest"

const require = createRequire(import.meta.url)
type RecordInput = { offsetDelta?: number; timestampDelta?: number; key?: unknown; value?: unknown; headers?: Record<string, unknown> }
type Encoded = { buffer: Buffer }
const originalRecord = require("kafkajs/src/protocol/recordBatch/record/v0/index.js") as (r: RecordInput) => Encoded
const patchedRecord = require("../../src/layers/kafka/patches/recordV0.cjs") as (r: RecordInput) => Encoded
const originalGroup = require("kafkajs/src/producer/groupMessagesPerPartition.js") as (a: unknown) => Record<string, unknown[]>
const patchedGroup = require("../../src/layers/kafka/patches/groupMessagesPerPartition.cjs") as (a: unknown) => Record<string, unknown[]>

/** A small seeded generator: the same cases on every run. */
const random = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

const texts = ["", "c", "2025em1100506_orders", "2025-11-20T10:11:12.123456Z#123456", "naïve café ☕", "𝄞 emoji 😀", "x".repeat(200), "y".repeat(20_000)]

describe("kafkajs record encoder patch", () => {
  it("encodes exactly the bytes kafkajs 2.2.4 does", () => {
    const next = random(42)
    const pick = <T>(xs: ReadonlyArray<T>) => xs[Math.floor(next() * xs.length)]!
    const bytesLike = () => {
      const text = pick(texts)
      const r = next()
      return r < 0.1 ? null : r < 0.4 ? Buffer.from(text, "utf8") : text
    }
    const deltas = [0, 1, 63, 64, 127, 128, 8191, 8192, 1_000_000, 2 ** 30 - 1, 2 ** 30, 2 ** 31 - 1, -1, -64, -65, 2 ** 40, -(2 ** 40)]
    let compared = 0
    for (let i = 0; i < 3000; i++) {
      const headers: Record<string, unknown> = {}
      const count = Math.floor(next() * 6)
      for (let h = 0; h < count; h++) {
        const name = pick(["op", "source", "captured_at", "capture_key", "ünïcode", "multi"])
        headers[name] = next() < 0.15
          ? [pick(texts), Buffer.from(pick(texts))]
          : next() < 0.5 ? Buffer.from(pick(texts)) : pick(texts)
      }
      const record: RecordInput = {
        offsetDelta: pick(deltas.filter((d) => d >= 0 && d < 2 ** 31)),
        timestampDelta: pick(deltas),
        key: bytesLike(),
        value: bytesLike(),
        headers
      }
      expect(patchedRecord(record).buffer.equals(originalRecord(record).buffer), JSON.stringify(record).slice(0, 300)).toBe(true)
      compared += 1
    }
    // The defaults: no deltas, no headers.
    expect(patchedRecord({ key: "k", value: "v" }).buffer).toEqual(originalRecord({ key: "k", value: "v" }).buffer)
    expect(compared).toBe(3000)
  })

  it("refuses a null header value, as kafkajs does", () => {
    expect(() => originalRecord({ key: "k", value: "v", headers: { h: null } })).toThrow()
    expect(() => patchedRecord({ key: "k", value: "v", headers: { h: null } })).toThrow()
  })
})

describe("kafkajs grouping patch", () => {
  it("groups messages per partition like kafkajs 2.2.4, in order", () => {
    const next = random(7)
    const partitionMetadata = [{ partitionId: 0 }, { partitionId: 1 }, { partitionId: 2 }]
    const messages = Array.from({ length: 2000 }, (_, i) => ({ key: String(i), value: `v${i}`, partition: Math.floor(next() * 3) }))
    const partitioner = ({ message }: { message: { partition: number } }) => message.partition
    const args = { topic: "t", partitionMetadata, messages, partitioner }
    expect(patchedGroup(args)).toEqual(originalGroup(args))
    expect(patchedGroup({ ...args, partitionMetadata: [] })).toEqual({})
  })
})
