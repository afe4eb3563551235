/**
 * The capture epoch in change keys (issue 18, item 8): a new slot (re-snapshot, failover, restore)
 * can start at LSNs below the keys the table already holds; its epoch, compared first, makes its
 * changes newer, and a replaced slot's producer still publishing older.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { changeHeaders, type ChangeKey, type ChangeOp, compareChangeKeys, formatChangeKey, formatLsn, parseChangeKey } from "../../src/domain/Change.ts"
import { type Order, orderToJson } from "../../src/domain/Order.ts"
import { append, makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryDeadLetters, memoryOrderStream } from "../../src/layers/memory/memoryLayers.ts"
import { CaptureState, newEpoch } from "../../src/layers/postgres/logical/captureState.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { addToSplit, openSplit } from "../../src/programs/consumer/split.ts"
import { positionTxns, tablePositions } from "../../src/table/positions.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { emptySnapshot } from "../../src/table/snapshot.ts"
import { memoryLakeLayer, tableFiles } from "../support/memoryTable.ts"
import { drainOnce, order } from "./fixtures.ts"

const topicName = "orders_raw"
const before = 1_764_000_000_000
const after = 1_764_950_400_000

const key = (epoch: number, lsn: number, phase: 0 | 1, seq: number): ChangeKey => ({ epoch, lsn: BigInt(lsn), phase, seq })

interface Step {
  readonly op: ChangeOp
  readonly order: Order
  readonly key: ChangeKey | string
}

/** As the producer publishes a change; a key given as text goes into the header as it is. */
const message = ({ key: k, op, order: row }: Step) => ({
  key: String(row.order_id),
  value: op === "delete" ? null : orderToJson(row),
  headers: {
    [changeHeaders.op]: op,
    [changeHeaders.changeKey]: typeof k === "string" ? k : formatChangeKey(k),
    ...(typeof k === "string" ? {} : { [changeHeaders.lsn]: formatLsn(k.lsn) })
  }
})

const encoder = new TextEncoder()

/** The messages as one fetched batch of partition 0, from offset `from`. */
const batchOf = (steps: ReadonlyArray<Step>, from = 0n) => ({
  topic: topicName,
  partition: 0,
  messages: steps.map((step, i) => {
    const m = message(step)
    return { offset: from + BigInt(i), key: encoder.encode(m.key), value: m.value === null ? null : encoder.encode(m.value), headers: m.headers }
  }),
  nextOffset: from + BigInt(steps.length),
  backlog: false
})

describe("change keys with an epoch", () => {
  it("read and write `<epoch>:<lsn>:<phase>:<seq>`, and the form without an epoch as epoch 0", () => {
    expect(formatChangeKey(key(after, 0xE6BCC38, 1, 3))).toBe("1764950400000:000000000E6BCC38:1:3")
    expect(parseChangeKey("1764950400000:000000000E6BCC38:1:3")).toEqual(key(after, 0xE6BCC38, 1, 3))
    // What the release before epochs published, and what epoch 0 still publishes.
    expect(parseChangeKey("000000000E6BCC38:0:42")).toEqual(key(0, 0xE6BCC38, 0, 42))
    expect(formatChangeKey(key(0, 0xE6BCC38, 0, 42))).toBe("000000000E6BCC38:0:42")
    for (const bad of ["x:000000000E6BCC38:1:3", "-1:000000000E6BCC38:1:3", "1:2:000000000E6BCC38:1:3", "1234567890123456:000000000E6BCC38:1:3", "17:E6BCC38:1:3"]) {
      expect(parseChangeKey(bad), bad).toBeUndefined()
    }
  })

  it("order by epoch first: a new slot's lower LSN is after the old slot's higher one", () => {
    expect(compareChangeKeys(key(after, 0x100, 0, 1), key(before, 0xFFFF_FFFF, 1, 9))).toBeGreaterThan(0)
    expect(compareChangeKeys(key(before, 0xFFFF_FFFF, 1, 9), key(after, 0x100, 0, 1))).toBeLessThan(0)
    expect(compareChangeKeys(key(0, 0xFFFF_FFFF, 1, 9), key(1, 0, 0, 0))).toBeLessThan(0)
    expect(compareChangeKeys(key(after, 0x200, 1, 0), key(after, 0x100, 1, 5))).toBeGreaterThan(0)
    expect(compareChangeKeys(key(after, 0x100, 1, 5), key(after, 0x100, 1, 5))).toBe(0)
  })

  it("a new slot's epoch is above the previous one even when the clock is not", () => {
    expect(newEpoch(0, after)).toBe(after)
    expect(newEpoch(before, after)).toBe(after)
    expect(newEpoch(after, after)).toBe(after + 1)
    expect(newEpoch(after, before)).toBe(after + 1)
  })

  it("a capture state file written before epochs reads as epoch 0; the epoch is saved with the state", () => {
    const old = { slot: "s", consistent_point: "0/10", snapshot: { done: true, last_order_id: null, rows: 3 } }
    expect(Schema.decodeUnknownSync(CaptureState)(old).epoch).toBe(0)
    const state = Schema.decodeUnknownSync(CaptureState)({ ...old, epoch: after })
    expect(state.epoch).toBe(after)
    expect(Schema.encodeSync(CaptureState)(state)).toMatchObject({ epoch: after })
  })

  it("the table keeps the epoch with the change key in its txns; a table written before epochs reads as epoch 0", () => {
    const position = { nextOffset: 7n, lastCaptureKey: null, lastChangeKey: key(after, 0x1234, 1, 2) }
    const txnsOf = (actions: ReturnType<typeof positionTxns>) =>
      new Map(actions.flatMap((a) => ("txn" in a ? [[a.txn.appId, a.txn] as const] : [])))
    const txns = txnsOf(positionTxns(topicName, 0, position, 1))
    expect(tablePositions({ ...emptySnapshot, txns }, topicName).get(0)).toEqual(position)
    const older = new Map([...txns].filter(([appId]) => !appId.endsWith(".change_epoch")))
    expect(tablePositions({ ...emptySnapshot, txns: older }, topicName).get(0)?.lastChangeKey).toEqual(key(0, 0x1234, 1, 2))
  })
})

describe("de-duplication across epochs", () => {
  const o1 = order(1, "2025-01-15T10:00:00Z")
  const o2 = order(2, "2025-01-15T11:00:00Z")

  it("a new epoch's changes at lower LSNs are applied; an older epoch's after them are stale", () => {
    const split = openSplit(topicName, 0, { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: null })
    addToSplit(split, batchOf([
      { op: "insert", order: o1, key: key(before, 0x9000, 1, 0) },
      { op: "snapshot", order: o1, key: key(after, 0x100, 0, 1) },
      { op: "update", order: o1, key: key(before, 0x9100, 1, 0) },
      { op: "update", order: o1, key: key(after, 0x200, 1, 0) },
      // A copy within the new epoch: a duplicate, not stale.
      { op: "update", order: o1, key: key(after, 0x200, 1, 0) }
    ]))
    expect(split.changes.map((c) => c.offset)).toEqual([0n, 1n, 3n])
    expect(split.lastChangeKey).toEqual(key(after, 0x200, 1, 0))
    expect({ duplicates: split.duplicates, stale: split.stale, written: split.written }).toEqual({ duplicates: 2, stale: 1, written: 3 })
  })

  it.effect("through the table: a re-snapshot below the stored LSN lands, a replaced slot's late change does not, old keys read as epoch 0", () =>
    Effect.gen(function*() {
      const raw = yield* makeMemoryTopic(topicName)
      const dlq = yield* makeMemoryTopic("orders_dlq")
      const objects = yield* makeMemoryObjects
      const layer = Layer.mergeAll(memoryOrderStream(raw), memoryDeadLetters(dlq), memoryLakeLayer(objects))
      const drain = drainOnce(topicName, layer)
      const rows = Effect.map(tableFiles(objects), (files) => new Map([...files.values()].flat().map((o) => [o.order_id, o.order_status])))
      const position = loadSnapshot().pipe(
        Effect.map((snapshot) => tablePositions(snapshot, topicName).get(0)?.lastChangeKey),
        Effect.provide(memoryTableStorage(objects)),
        Effect.orDie
      )

      // A slot from before epochs (the previous release's keys), far along its WAL.
      yield* append(raw, [
        message({ op: "snapshot", order: o1, key: "0000000000001000:0:1" }),
        message({ op: "update", order: { ...o1, order_status: "PREPARING" }, key: "0000000000F00000:1:0" })
      ])
      yield* drain
      expect(yield* position).toEqual(key(0, 0xF00000, 1, 0))

      // A failover: the new slot's consistent point is below it, and so are its changes.
      yield* append(raw, [
        message({ op: "snapshot", order: { ...o1, order_status: "DELIVERED" }, key: key(before, 0x2000, 0, 1) }),
        message({ op: "insert", order: o2, key: key(before, 0x3000, 1, 0) })
      ])
      const first = yield* drain
      expect(first).toMatchObject({ messages: 2, written: 2, duplicates: 0 })
      expect(yield* rows).toEqual(new Map([[1, "DELIVERED"], [2, "PLACED"]]))
      expect(yield* position).toEqual(key(before, 0x3000, 1, 0))

      // Re-snapshot again; then the replaced slot's producer publishes late, at a high LSN.
      yield* append(raw, [
        message({ op: "snapshot", order: { ...o1, order_status: "DELIVERED" }, key: key(after, 0x1000, 0, 1) }),
        message({ op: "snapshot", order: o2, key: key(after, 0x1000, 0, 2) }),
        message({ op: "delete", order: o2, key: key(before, 0xFF_0000, 1, 0) }),
        message({ op: "update", order: { ...o1, order_status: "CANCELLED" }, key: key(before, 0xFF_0000, 1, 1) }),
        message({ op: "update", order: { ...o2, order_status: "PREPARING" }, key: key(after, 0x1100, 1, 0) })
      ])
      const second = yield* drain
      expect(second).toMatchObject({ messages: 5, written: 3, duplicates: 2 })
      expect(yield* rows).toEqual(new Map([[1, "DELIVERED"], [2, "PREPARING"]]))
      expect(yield* position).toEqual(key(after, 0x1100, 1, 0))
    }))
})
