// kafkajs 2.2.4's Record v0 decoder (src/protocol/recordBatch/record/v0/decoder.js) with the same
// result and less work per message: the original builds the headers object with one object spread
// per header (O(h²) copies and h objects per message) and parses the batch's first offset and
// timestamp from their decimal strings through Long for every message. The benchmark's profile put
// it at 8% of the consumer's CPU during a backfill, most of it garbage.
//
// scripts/build.mjs puts this module in place of the original when it bundles the programs;
// test/unit/kafkajsPatches.test.ts holds its output equal to the original's.
"use strict"
const Long = require("kafkajs/src/utils/long")
const HeaderDecoder = require("kafkajs/src/protocol/recordBatch/header/v0/decoder")
const TimestampTypes = require("kafkajs/src/protocol/timestampTypes")

// A batch's first offset and timestamp as Numbers, parsed once per batch; null when they are not
// exact as Numbers (then the original Long arithmetic runs).
const firsts = new WeakMap()
const exact = (text) => {
  const n = Number(text)
  return Number.isSafeInteger(n) && String(n) === String(text) ? n : null
}
const firstsOf = (batchContext) => {
  let found = firsts.get(batchContext)
  if (found === undefined) {
    found = { offset: exact(batchContext.firstOffset), timestamp: exact(batchContext.firstTimestamp) }
    firsts.set(batchContext, found)
  }
  return found
}

const sum = (first, delta, text) => {
  if (first !== null) {
    const d = typeof delta === "number" ? delta : delta.toNumber()
    const total = first + d
    if (Number.isSafeInteger(d) && Number.isSafeInteger(total)) return String(total)
  }
  return Long.fromValue(text).add(delta).toString()
}

const headersOf = (pairs) => {
  const headers = {}
  for (const { key, value } of pairs) {
    // An own "__proto__" key needs the original's object-literal semantics.
    if (key === "__proto__") return spreadHeaders(pairs)
    const current = headers[key]
    headers[key] = current === undefined ? value : Array.isArray(current) ? current.concat([value]) : [current, value]
  }
  return headers
}

const spreadHeaders = (pairs) =>
  pairs.reduce(
    (obj, { key, value }) => ({
      ...obj,
      [key]: obj[key] === undefined ? value : Array.isArray(obj[key]) ? obj[key].concat([value]) : [obj[key], value]
    }),
    {}
  )

module.exports = (decoder, batchContext = {}) => {
  const {
    firstOffset,
    firstTimestamp,
    magicByte,
    isControlBatch = false,
    timestampType,
    maxTimestamp
  } = batchContext
  const known = firstsOf(batchContext)
  const attributes = decoder.readInt8()

  const timestampDelta = decoder.readVarLong()
  const timestamp = timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp
    ? maxTimestamp
    : sum(known.timestamp, timestampDelta, firstTimestamp)

  const offsetDelta = decoder.readVarInt()
  const offset = sum(known.offset, offsetDelta, firstOffset)

  const key = decoder.readVarIntBytes()
  const value = decoder.readVarIntBytes()
  const headers = headersOf(decoder.readVarIntArray(HeaderDecoder))

  return {
    magicByte,
    attributes,
    timestamp,
    offset,
    key,
    value,
    headers,
    isControlRecord: isControlBatch,
    batchContext
  }
}
