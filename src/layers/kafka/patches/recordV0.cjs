// kafkajs 2.2.4's Record v0 encoder (src/protocol/recordBatch/record/v0/index.js), rewritten to
// produce the same bytes with one allocation per record. The original allocates a zero-filled
// 512-byte Encoder for the record and for each header, plus a Buffer per varint: the benchmark's
// profile showed Buffer allocation and the GC it causes as the largest share of the producer's CPU,
// and four headers per order halved kafkajs's publish rate.
//
// scripts/build.mjs puts this module in place of the original when it bundles the programs (only
// for the exact file it was written against); test/unit/kafkajsPatches.test.ts holds its output
// byte-equal to the original's.
"use strict"
const Encoder = require("kafkajs/src/protocol/encoder")

const UNSIGNED_INT32_MAX_NUMBER = 0xffffff80

// Zigzag then unsigned LEB128, 32-bit, exactly as Encoder.writeVarInt does it.
const sizeOfVarInt = (value) => Encoder.sizeOfVarInt(value)

const writeUVarInt = (buf, offset, value) => {
  while ((value & UNSIGNED_INT32_MAX_NUMBER) !== 0) {
    buf[offset++] = (value & 0x7f) | 0x80
    value >>>= 7
  }
  buf[offset++] = value & 0x7f
  return offset
}

const writeVarInt = (buf, offset, value) => writeUVarInt(buf, offset, Encoder.encodeZigZag(value))

// Varlong: the original's Long arithmetic, kept for exactness; small deltas take the int path,
// which gives the same bytes while zigzag(value) fits in 31 bits.
const writeVarLong = (buf, offset, value) => {
  if (typeof value === "number" && value >= -0x3fffffff && value <= 0x3fffffff && Number.isInteger(value)) {
    return writeVarInt(buf, offset, value)
  }
  const scratch = new Encoder(16).writeVarLong(value).buffer
  scratch.copy(buf, offset)
  return offset + scratch.length
}

const sizeOfVarLong = (value) => {
  if (typeof value === "number" && value >= -0x3fffffff && value <= 0x3fffffff && Number.isInteger(value)) {
    return sizeOfVarInt(value)
  }
  return Encoder.sizeOfVarLong(value)
}

// Bytes fields (key, value, header value): null is length -1; Buffers as they are; anything else as
// its String() in UTF-8, like Encoder.writeVarIntBytes.
const bytesOf = (value) => (value == null || Buffer.isBuffer(value) ? value : String(value))
const lengthOf = (bytes) => (bytes == null ? -1 : Buffer.isBuffer(bytes) ? bytes.length : Buffer.byteLength(bytes, "utf8"))

const writeBytes = (buf, offset, bytes, length) => {
  offset = writeVarInt(buf, offset, length)
  if (bytes == null) return offset
  if (Buffer.isBuffer(bytes)) return offset + bytes.copy(buf, offset)
  return offset + buf.write(bytes, offset, length, "utf8")
}

module.exports = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {
  const headerKeys = []
  const headerValues = []
  for (const headerKey of Object.keys(headers)) {
    const headerValue = headers[headerKey]
    if (Array.isArray(headerValue)) {
      for (const v of headerValue) {
        headerKeys.push(headerKey)
        headerValues.push(v)
      }
    } else {
      headerKeys.push(headerKey)
      headerValues.push(headerValue)
    }
  }

  const keyBytes = bytesOf(key)
  const valueBytes = bytesOf(value)
  const keyLength = lengthOf(keyBytes)
  const valueLength = lengthOf(valueBytes)
  const headerKeyLengths = new Array(headerKeys.length)
  const headerValueBytes = new Array(headerKeys.length)
  const headerValueLengths = new Array(headerKeys.length)
  let sizeOfHeaders = sizeOfVarInt(headerKeys.length)
  for (let i = 0; i < headerKeys.length; i++) {
    // The original sizes header keys and values with Buffer.byteLength, which throws on null and
    // undefined: keep that, rather than encode something kafkajs never would.
    const keySize = Buffer.byteLength(headerKeys[i])
    Buffer.byteLength(headerValues[i])
    headerKeyLengths[i] = keySize
    headerValueBytes[i] = bytesOf(headerValues[i])
    headerValueLengths[i] = lengthOf(headerValueBytes[i])
    sizeOfHeaders += sizeOfVarInt(keySize) + keySize + sizeOfVarInt(headerValueLengths[i]) + headerValueLengths[i]
  }

  const sizeOfBody =
    1 +
    sizeOfVarLong(timestampDelta) +
    sizeOfVarInt(offsetDelta) +
    sizeOfVarInt(keyLength) + Math.max(keyLength, 0) +
    sizeOfVarInt(valueLength) + Math.max(valueLength, 0) +
    sizeOfHeaders

  const buf = Buffer.allocUnsafe(sizeOfVarInt(sizeOfBody) + sizeOfBody)
  let offset = writeVarInt(buf, 0, sizeOfBody)
  buf[offset++] = 0 // attributes: none used
  offset = writeVarLong(buf, offset, timestampDelta)
  offset = writeVarInt(buf, offset, offsetDelta)
  offset = writeBytes(buf, offset, keyBytes, keyLength)
  offset = writeBytes(buf, offset, valueBytes, valueLength)
  offset = writeVarInt(buf, offset, headerKeys.length)
  for (let i = 0; i < headerKeys.length; i++) {
    offset = writeBytes(buf, offset, headerKeys[i], headerKeyLengths[i])
    offset = writeBytes(buf, offset, headerValueBytes[i], headerValueLengths[i])
  }
  if (offset !== buf.length) throw new Error(`kafkajs record patch: encoded ${offset} bytes, sized ${buf.length}`)

  // An Encoder holding the record, as the original returns: RecordBatch copies `.buffer` of each.
  const encoder = Object.create(Encoder.prototype)
  encoder.buf = buf
  encoder.offset = offset
  return encoder
}
