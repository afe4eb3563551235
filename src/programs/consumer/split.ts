import { Either } from "effect"
import { type CaptureKey, compareKeys } from "../../domain/CaptureKey.ts"
import { changeHeaders, type ChangeKey, type ChangeOp, changeOps, compareChangeKeys, type OrderChange, parseChangeKey } from "../../domain/Change.ts"
import { decodeAndClean } from "../../domain/Cleaning.ts"
import { rejection, type Rejection } from "../../domain/Rejection.ts"
import { type Order, orderToJson } from "../../domain/Order.ts"
import { parseIsoMicros, utcDate } from "../../domain/Timestamp.ts"
import type { DeadLetter } from "../../services/DeadLetters.ts"
import type { ChangeAt, PartitionPosition } from "../../services/Lake.ts"
import { captureKeyHeader, headerOf, type MessageBatch, type RawMessage } from "../../services/OrderStream.ts"

const parseCaptureKey = (text: string | undefined): CaptureKey | undefined => {
  if (text === undefined) return undefined
  const hash = text.lastIndexOf("#")
  if (hash < 0) return undefined
  const createdAt = parseIsoMicros(text.slice(0, hash))
  const orderId = Number(text.slice(hash + 1))
  return createdAt === undefined || !Number.isSafeInteger(orderId) ? undefined : { created_at: createdAt, order_id: orderId }
}

/**
 * The capture key of a message our producer published: its header, and only when it names the very
 * order in the value. Any other message (another client's, or one whose header disagrees) has none.
 */
const producerKeyOf = (message: RawMessage, order: Order): CaptureKey | undefined => {
  const key = parseCaptureKey(headerOf(message, captureKeyHeader))
  return key !== undefined && key.order_id === order.order_id && key.created_at === order.created_at ? key : undefined
}

const keyDecoder = new TextDecoder("utf-8", { fatal: true })

const orderIdOfKey = (key: Uint8Array | null): number | undefined => {
  if (key === null) return undefined
  try {
    const text = keyDecoder.decode(key)
    const id = Number(text)
    return /^-?\d+$/.test(text) && Number.isSafeInteger(id) ? id : undefined
  } catch {
    return undefined
  }
}

/**
 * A message of logical capture (it has a `change_key` header) to a change. A delete is a tombstone:
 * its key names the order and its value is null. Anything inconsistent (a delete with a value, a key
 * that is not the value's order, an unknown op) is rejected with what was wrong, never guessed at.
 */
export const decodeChange = (message: RawMessage, keyText: string): Either.Either<OrderChange, Rejection> => {
  const key = parseChangeKey(keyText)
  if (key === undefined) return Either.left(rejection("invalid_change", `change_key header is not [<epoch>:]<16 hex>:<phase>:<seq>: ${JSON.stringify(keyText)}`))
  const op = headerOf(message, changeHeaders.op) as ChangeOp | undefined
  if (op === undefined || !changeOps.includes(op)) {
    return Either.left(rejection("invalid_change", `op header is ${JSON.stringify(op ?? null)}; expected one of ${changeOps.join(", ")}`))
  }
  const commitText = headerOf(message, changeHeaders.commitTime)
  const commitTime = commitText === undefined ? null : parseIsoMicros(commitText) ?? null
  const xidText = headerOf(message, changeHeaders.xid)
  const xid = xidText === undefined || !/^\d+$/.test(xidText) ? null : Number(xidText)
  const keyId = orderIdOfKey(message.key)
  if (op === "truncate") {
    const partitionsText = headerOf(message, changeHeaders.partitions) ?? ""
    const partitions = Number(partitionsText)
    if (!/^\d{1,6}$/.test(partitionsText) || partitions < 1) {
      return Either.left(rejection("invalid_change", `a truncate's partitions header must be the topic's partition count, it is ${JSON.stringify(partitionsText)}`))
    }
    if (message.value !== null && message.value.length > 0) return Either.left(rejection("invalid_change", "a truncate's value must be null, this one has a value"))
    return Either.right({ op, orderId: 0, order: null, key, commitTime, xid, partitions })
  }
  if (op === "delete") {
    if (message.value !== null && message.value.length > 0) {
      return Either.left(rejection("invalid_change", "a delete must be a tombstone (null value), this one has a value"))
    }
    if (keyId === undefined) return Either.left(rejection("invalid_change", "a delete's key must be its order_id"))
    return Either.right({ op, orderId: keyId, order: null, key, commitTime, xid })
  }
  const decoded = decodeAndClean(message.value)
  if (Either.isLeft(decoded)) return Either.left(decoded.left)
  const order = decoded.right
  if (keyId !== undefined && keyId !== order.order_id) {
    return Either.left(rejection("invalid_change", `key ${keyId} is not the value's order_id ${order.order_id}`))
  }
  return Either.right({ op, orderId: order.order_id, order, key, commitTime, xid })
}

/**
 * One partition's part of a lake batch, filled from consecutive messages of that partition (a batch
 * holds one split per partition it read, committed together): the orders for the table
 * (grouped by UTC date), dead letters, and re-publications skipped. Messages are decoded as they
 * arrive and only the orders are kept, so a large batch costs its orders, not its raw messages.
 */
export interface Split {
  readonly topic: string
  readonly partition: number
  /** The table's position for the partition when the batch opened. */
  readonly from: bigint
  /** Offsets of the first and last message past `from`; null while there is none. */
  firstOffset: bigint | null
  lastOffset: bigint | null
  /** The offset after the last message added. */
  nextOffset: bigint
  /** Messages past `from`, and the bytes of their values. */
  messages: number
  bytes: number
  readonly byDate: Map<string, Array<Order>>
  readonly dead: Array<DeadLetter>
  /**
   * Valid orders from other clients (no capture-key header of ours): written unless the very same
   * row is in the table already, which only the table can tell (looked up before the commit).
   */
  readonly foreign: Array<Order>
  lastCaptureKey: CaptureKey | null
  /** Changes of logical capture, in the partition's order (each order's last one wins in the table). */
  readonly changes: Array<ChangeAt>
  lastChangeKey: ChangeKey | null
  duplicates: number
  /** Of the duplicates, changes of an older epoch than the partition's mark: a replaced slot's. */
  stale: number
  written: number
}

export const openSplit = (topic: string, partition: number, position: PartitionPosition): Split => ({
  topic,
  partition,
  from: position.nextOffset,
  firstOffset: null,
  lastOffset: null,
  nextOffset: position.nextOffset,
  messages: 0,
  bytes: 0,
  byDate: new Map(),
  dead: [],
  foreign: [],
  lastCaptureKey: position.lastCaptureKey,
  changes: [],
  lastChangeKey: position.lastChangeKey,
  duplicates: 0,
  stale: 0,
  written: 0
})

export const addOrder = (split: Split, order: Order) => {
  split.written += 1
  const date = utcDate(order.created_at)
  const group = split.byDate.get(date)
  if (group === undefined) split.byDate.set(date, [order])
  else group.push(order)
}

/**
 * Adds the other clients' orders that are not in the table already (`inTable`: their rows as
 * `orderToJson` gives them, found by the Lake), nor earlier in this batch. Runs once, before the commit.
 */
export const settleForeign = (split: Split, inTable: ReadonlySet<string>) => {
  if (split.foreign.length === 0) return split
  const seen = new Set(inTable)
  const dates = new Set(split.foreign.map((o) => utcDate(o.created_at)))
  for (const date of dates) for (const order of split.byDate.get(date) ?? []) seen.add(orderToJson(order))
  for (const order of split.foreign) {
    const row = orderToJson(order)
    if (seen.has(row)) {
      split.duplicates += 1
      continue
    }
    seen.add(row)
    addOrder(split, order)
  }
  split.foreign.length = 0
  return split
}

/**
 * Adds the next messages of the split's partition. Deterministic: the same messages from the same
 * position always give the same orders, dead letters and skips.
 *
 * The skip rule: a message is skipped only when it is known to be in the table already. Our
 * producer publishes each partition in capture-key order and only re-publishes after a crash
 * (from its last saved cursor); an order always goes to the same partition. So a producer message
 * whose capture key is at or below the highest one already taken from this partition (kept in the
 * table with the offsets) is a copy of one handled before. With several partitions this holds per
 * partition, as long as the producer sends its batches one after the other (each `send` acked
 * before the next, one in flight): every partition then receives a subsequence of the capture-key
 * order, and its mark only ever compares keys of that partition. Messages without our header (other
 * clients, tools) are skipped only when the table (or this batch) already holds the very same row,
 * which `settleForeign` decides with the table's answer; dead letters are never skipped.
 */
export const addToSplit = (split: Split, batch: MessageBatch): Split => {
  for (const message of batch.messages) {
    if (message.offset < split.nextOffset) continue
    if (split.firstOffset === null) split.firstOffset = message.offset
    split.lastOffset = message.offset
    split.messages += 1
    split.bytes += message.value?.length ?? 0
    const changeKey = headerOf(message, changeHeaders.changeKey)
    if (changeKey !== undefined) {
      const change = decodeChange(message, changeKey)
      if (Either.isLeft(change)) {
        split.dead.push({ source: { topic: batch.topic, partition: batch.partition }, message, rejection: change.left })
        continue
      }
      if (change.right.partitions !== undefined && batch.partition >= change.right.partitions) {
        const detail = `a truncate marker for a topic of ${change.right.partitions} partitions on partition ${batch.partition}`
        split.dead.push({ source: { topic: batch.topic, partition: batch.partition }, message, rejection: rejection("invalid_change", detail) })
        continue
      }
      // The producer publishes each partition in change-key order and re-sends only after a crash or
      // a reconnect (what PostgreSQL streams again): a key at or below the partition's mark is a copy.
      // A lower epoch is a replaced slot's producer still publishing: its changes are stale.
      if (split.lastChangeKey !== null && compareChangeKeys(change.right.key, split.lastChangeKey) <= 0) {
        split.duplicates += 1
        if (change.right.key.epoch < split.lastChangeKey.epoch) split.stale += 1
        continue
      }
      split.lastChangeKey = change.right.key
      split.changes.push({ ...change.right, offset: message.offset })
      split.written += 1
      continue
    }
    const decoded = decodeAndClean(message.value)
    if (Either.isLeft(decoded)) {
      split.dead.push({ source: { topic: batch.topic, partition: batch.partition }, message, rejection: decoded.left })
      continue
    }
    const order = decoded.right
    const captured = producerKeyOf(message, order)
    if (captured === undefined) {
      split.foreign.push(order)
      continue
    }
    if (split.lastCaptureKey !== null && compareKeys(captured, split.lastCaptureKey) <= 0) {
      split.duplicates += 1
      continue
    }
    split.lastCaptureKey = captured
    addOrder(split, order)
  }
  if (batch.nextOffset > split.nextOffset) split.nextOffset = batch.nextOffset
  return split
}


