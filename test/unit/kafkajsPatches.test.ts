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
type Decoded = Record<string, unknown>
type DecoderLike = { readVarIntBytes: () => Buffer }
const Decoder = require("kafkajs/src/protocol/decoder.js") as new (buffer: Buffer) => DecoderLike
const originalDecode = require("kafkajs/src/protocol/recordBatch/record/v0/decoder.js") as (d: DecoderLike, c: object) => Decoded
const patchedDecode = require("../../src/layers/kafka/patches/recordDecoderV0.cjs") as (d: DecoderLike, c: object) => Decoded
const originalCrc = require("kafkajs/src/protocol/recordBatch/crc32C/crc32C.js") as (b: Buffer) => number
const patchedCrc = require("../../src/layers/kafka/patches/crc32C.cjs") as (b: Buffer) => number
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

/** Buffers as text, so that deep equality is quick (vitest compares Buffers byte by byte). */
const comparable = (value: unknown): unknown =>
  Buffer.isBuffer(value)
    ? `buffer:${value.toString("base64")}`
    : Array.isArray(value)
    ? value.map(comparable)
    : value !== null && typeof value === "object"
    ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, comparable(v)]))
    : value

describe("kafkajs record decoder patch", () => {
  it("decodes to exactly what kafkajs 2.2.4 decodes", () => {
    const next = random(11)
    const pick = <T>(xs: ReadonlyArray<T>) => xs[Math.floor(next() * xs.length)]!
    const contexts = [
      { firstOffset: "0", firstTimestamp: "1763000000000", magicByte: 2, timestampType: 0, maxTimestamp: "1763000000999" },
      { firstOffset: "123456789", firstTimestamp: "1763000000000", magicByte: 2, timestampType: 1, maxTimestamp: "1763000000999" },
      { firstOffset: "9007199254740990", firstTimestamp: "-1", magicByte: 2, isControlBatch: true },
      { firstOffset: "9223372036854775000", firstTimestamp: "9223372036854775000", magicByte: 2, timestampType: 0 },
      { firstOffset: "42", firstTimestamp: "1763000000000", magicByte: 2 }
    ]
    let compared = 0
    for (let i = 0; i < 1000; i++) {
      const headers: Record<string, unknown> = {}
      const count = Math.floor(next() * 6)
      for (let h = 0; h < count; h++) {
        const name = pick(["op", "source", "capture_key", "capture_backlog", "dup", "__proto__", "constructor"])
        headers[name] = next() < 0.2 ? [pick(texts), pick(texts)] : pick(texts)
      }
      const record = originalRecord({
        offsetDelta: pick([0, 1, 5, 127, 128, 99_999, 2 ** 31 - 1]),
        timestampDelta: pick([0, 1, 1000, -5, 2 ** 40]),
        key: next() < 0.1 ? null : pick(texts),
        value: next() < 0.1 ? null : pick(texts),
        headers
      })
      for (const context of contexts) {
        const decoded = [originalDecode, patchedDecode].map((decode) => {
          const body = new Decoder(record.buffer).readVarIntBytes()
          return decode(new Decoder(body), context)
        })
        expect(comparable(decoded[1])).toEqual(comparable(decoded[0]))
        expect(Object.getPrototypeOf(decoded[1]!["headers"])).toBe(Object.getPrototypeOf(decoded[0]!["headers"]))
        compared += 1
      }
    }
    expect(compared).toBe(5000)
  })
})

describe("kafkajs CRC-32C patch", () => {
  it("gives the checksum kafkajs 2.2.4 gives, for any length and content", () => {
    const next = random(3)
    for (let i = 0; i < 2000; i++) {
      const length = i < 64 ? i : Math.floor(next() * 20_000)
      const buffer = Buffer.alloc(length)
      for (let j = 0; j < length; j++) buffer[j] = Math.floor(next() * 256)
      expect(patchedCrc(buffer)).toBe(originalCrc(buffer))
    }
    // The standard check value of CRC-32C.
    expect(patchedCrc(Buffer.from("123456789"))).toBe(0xe3069283)
  })
})
