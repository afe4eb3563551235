import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import type { Checkpoint } from "../../src/domain/Checkpoint.ts"
import type { Order } from "../../src/domain/Order.ts"
import { makeMemoryObjects, type MemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { Lake } from "../../src/services/Lake.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { parseCommit } from "../../src/table/actions.ts"
import { planCompaction } from "../../src/table/compaction.ts"
import { commitPath, lastCheckpointPath } from "../../src/table/logFiles.ts"
import { checkpointAndCleanLog, compactUntilDone, vacuumTable } from "../../src/table/maintenance.ts"
import { ordersFileBytes } from "../../src/table/ordersFile.ts"
import { ordersStats } from "../../src/table/ordersTable.ts"
import { openTable } from "../../src/table/openTable.ts"
import { tablePositions } from "../../src/table/positions.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { memoryLakeLayer, tableFiles } from "../support/memoryTable.ts"
import { order } from "./fixtures.ts"

const topic = "orders_raw"
const encoder = new TextEncoder()

/** Commits `batches` one-order-per-date batches through the real Lake, as the consumer would. */
const commitOrders = (objects: MemoryObjects, batches: ReadonlyArray<ReadonlyArray<Order>>) =>
  Effect.gen(function*() {
    const lake = yield* Lake
    let offset = (yield* lake.positions(topic)).get(0)?.nextOffset ?? 0n
    for (const orders of batches) {
      const byDate = new Map<string, Array<Order>>()
      for (const o of orders) {
        const date = new Date(Number(o.created_at / 1000n)).toISOString().slice(0, 10)
        byDate.set(date, [...(byDate.get(date) ?? []), o])
      }
      yield* lake.commitBatch([{
        topic,
        partition: 0,
        from: offset,
        firstOffset: offset,
        lastOffset: offset + BigInt(orders.length) - 1n,
        position: { nextOffset: offset + BigInt(orders.length), lastCaptureKey: null },
        ordersByDate: byDate
      }])
      offset += BigInt(orders.length)
    }
  }).pipe(Effect.provide(memoryLakeLayer(objects)))

const inStorage = <A, E>(objects: MemoryObjects, effect: Effect.Effect<A, E, TableStorage>) =>
  effect.pipe(Effect.provide(memoryTableStorage(objects)))

const ids = (files: ReadonlyMap<string, ReadonlyArray<Order>>) => [...files.values()].flat().map((o) => o.order_id)

describe("delta table", () => {
  it.effect("commits files with the partition's position, one version per batch", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      yield* commitOrders(objects, [[order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-16T10:00:00Z")], [order(3, "2025-01-16T11:00:00Z")]])
      const snapshot = yield* inStorage(objects, loadSnapshot())
      expect(snapshot.version).toBe(2)
      expect(snapshot.files.size).toBe(3)
      expect(tablePositions(snapshot, topic).get(0)?.nextOffset).toBe(3n)
      const v1 = yield* inStorage(objects, loadSnapshot({ version: 1 }))
      expect(v1.files.size).toBe(2)
      expect(ids(yield* tableFiles(objects)).sort()).toEqual([1, 2, 3])
      const commit = new TextDecoder().decode((yield* Ref.get(objects)).get(commitPath(2))!.bytes)
      const actions = parseCommit(commit)
      expect(actions.filter((a) => "txn" in a)).toHaveLength(1)
      expect(actions.filter((a) => "add" in a)).toHaveLength(1)
    }))

  it.effect("writes exact statistics", () =>
    Effect.sync(() => {
      const stats = JSON.parse(ordersStats([order(7, "2025-01-15T10:00:00.123456Z", 1999), order(3, "2025-01-15T11:00:00Z", null)]))
      expect(stats).toEqual({
        numRecords: 2,
        minValues: { order_id: 3, amount: 19.99, created_at: "2025-01-15T10:00:00.123Z" },
        maxValues: { order_id: 7, amount: 19.99, created_at: "2025-01-15T11:00:00.000Z" },
        nullCount: { order_id: 0, customer_name: 0, restaurant_name: 0, item: 0, amount: 1, order_status: 0, created_at: 0 }
      })
    }))

  it.effect("compaction merges a full tier into one file, keeping every row once and in order", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      const batches = Array.from({ length: 10 }, (_, i) => [order(i + 1, `2025-01-15T10:00:${String(i).padStart(2, "0")}Z`)])
      yield* commitOrders(objects, batches)
      const before = yield* inStorage(objects, loadSnapshot())
      expect(planCompaction(before, { targetFileBytes: 1 << 20, fanIn: 4, idleMs: 3_600_000 })).toHaveLength(1)
      const report = yield* inStorage(objects, compactUntilDone(before, { targetFileBytes: 1 << 20, fanIn: 4, idleMs: 3_600_000 }))
      expect(report).toMatchObject({ merged: 1, inputs: 10, rows: 10 })
      const after = yield* inStorage(objects, loadSnapshot())
      expect(after.files.size).toBe(1)
      expect([...after.files.values()][0]!.dataChange).toBe(false)
      expect(ids(yield* tableFiles(objects))).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
      // Same rows at the old version: readers of it see what they saw.
      expect((yield* inStorage(objects, loadSnapshot({ version: before.version }))).files.size).toBe(10)
      expect(tablePositions(after, topic).get(0)?.nextOffset).toBe(10n)
    }))

  it.effect("a partition gone quiet is merged whole; a busy one only by tiers", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      yield* commitOrders(objects, Array.from({ length: 5 }, (_, i) => [order(i + 1, `2025-01-15T10:00:0${i}Z`), order(i + 10, `2025-01-16T10:00:0${i}Z`)]))
      const snapshot = yield* inStorage(objects, loadSnapshot())
      const settings = { targetFileBytes: 1 << 20, fanIn: 8, idleMs: 60_000 }
      // 5 files per partition: below the fan-in, and the newest is seconds old.
      expect(planCompaction(snapshot, settings)).toEqual([])
      const later = Date.now() + 61_000
      expect(planCompaction(snapshot, settings, later).map((g) => [g.date, g.files.length])).toEqual([["2025-01-15", 5], ["2025-01-16", 5]])
      const report = yield* inStorage(objects, compactUntilDone(snapshot, { ...settings, idleMs: 0 }))
      expect(report.merged).toBe(2)
      const after = yield* inStorage(objects, loadSnapshot())
      expect(after.files.size).toBe(2)
      expect(planCompaction(after, { ...settings, idleMs: 0 })).toEqual([])
    }))

  it.effect("reads from its own checkpoint after the log before it is cleaned up", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      yield* commitOrders(objects, Array.from({ length: 5 }, (_, i) => [order(i + 1, "2025-01-15T10:00:00Z")]))
      const snapshot = yield* inStorage(objects, loadSnapshot())
      // Retention 0: every commit before the checkpoint may go.
      const done = yield* inStorage(objects, checkpointAndCleanLog(snapshot, -1))
      expect(done.version).toBe(5)
      expect(done.logFilesRemoved).toBe(5)
      expect((yield* Ref.get(objects)).has(commitPath(0))).toBe(false)
      const reread = yield* inStorage(objects, loadSnapshot())
      expect(reread.version).toBe(5)
      expect([...reread.files.keys()].sort()).toEqual([...snapshot.files.keys()].sort())
      expect(tablePositions(reread, topic).get(0)?.nextOffset).toBe(5n)
      const old = yield* Effect.flip(inStorage(objects, loadSnapshot({ version: 2 })))
      expect(old.message).toContain("00000000000000000000.json")
    }))

  it.effect("vacuum removes only unreferenced files older than the retention", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      yield* commitOrders(objects, [[order(1, "2025-01-15T10:00:00Z")]])
      // A crash leftover: written, never committed.
      yield* inStorage(objects, Effect.flatMap(TableStorage, (s) => s.write("date=2025-01-15/part-orphan.parquet", ordersFileBytes([order(9, "2025-01-15T10:00:00Z")]))))
      const snapshot = yield* inStorage(objects, loadSnapshot())
      expect((yield* inStorage(objects, vacuumTable(snapshot, 60_000))).removed).toBe(0)
      const swept = yield* inStorage(objects, vacuumTable(snapshot, -Date.now()))
      expect(swept.removed).toBe(1)
      expect(ids(yield* tableFiles(objects))).toEqual([1])
      // Compacted-away files: kept while a version within the retention names them, then removed.
      yield* commitOrders(objects, [[order(2, "2025-01-15T11:00:00Z")]])
      const beforeMerge = yield* inStorage(objects, loadSnapshot())
      const merged = yield* inStorage(objects, compactUntilDone(beforeMerge, { targetFileBytes: 1 << 20, fanIn: 2, idleMs: 0 }))
      expect(merged.merged).toBe(1)
      expect((yield* inStorage(objects, vacuumTable(merged.snapshot, 60_000))).removed).toBe(0)
      expect((yield* inStorage(objects, vacuumTable(merged.snapshot, -Date.now()))).removed).toBe(2)
      expect(ids(yield* tableFiles(objects)).sort()).toEqual([1, 2])
    }))

  it.effect("a damaged commit, a missing checkpoint and an unknown reader feature are named", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      yield* commitOrders(objects, [[order(1, "2025-01-15T10:00:00Z")], [order(2, "2025-01-15T10:00:00Z")]])
      const put = (path: string, text: string) => inStorage(objects, Effect.flatMap(TableStorage, (s) => s.write(path, encoder.encode(text))))
      const original = (yield* Ref.get(objects)).get(commitPath(2))!.bytes
      yield* put(commitPath(2), new TextDecoder().decode(original).slice(0, 40))
      expect((yield* Effect.flip(inStorage(objects, loadSnapshot()))).message).toMatch(/corrupt.*00000000000000000002\.json/)
      yield* put(commitPath(2), "")
      expect((yield* Effect.flip(inStorage(objects, loadSnapshot()))).message).toContain("empty commit")
      yield* inStorage(objects, Effect.flatMap(TableStorage, (s) => s.write(commitPath(2), original)))
      yield* put(lastCheckpointPath, `{"version":2,"size":4}`)
      expect((yield* Effect.flip(inStorage(objects, loadSnapshot()))).message).toMatch(/missing.*00000000000000000002\.checkpoint\.parquet/)
      yield* inStorage(objects, Effect.flatMap(TableStorage, (s) => s.remove(lastCheckpointPath)))
      yield* put(commitPath(3), `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}\n`)
      expect((yield* Effect.flip(inStorage(objects, loadSnapshot()))).message).toMatch(/unsupported.*deletionVectors/)
    }))

  it.effect("turns a lake of the previous release into a table, taking the checkpoint's offsets", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      const write = (path: string, orders: ReadonlyArray<Order>) =>
        inStorage(objects, Effect.flatMap(TableStorage, (s) => s.write(path, ordersFileBytes(orders))))
      yield* write(`date=2025-01-15/part-${topic}-0-00000000000000000000-00000000000000000001.parquet`, [order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-15T11:00:00Z")])
      // Written past the checkpoint by a run that died: the old consumer would have deleted it.
      yield* write(`date=2025-01-15/part-${topic}-0-00000000000000000002-00000000000000000002.parquet`, [order(3, "2025-01-15T12:00:00Z")])
      const checkpoint: Checkpoint = { topic, partitions: { "0": { next_offset: 2n, last_key: { created_at: order(2, "2025-01-15T11:00:00Z").created_at, order_id: 2 } } } }
      const opened = yield* inStorage(objects, openTable({ configuration: {}, legacy: { topic, checkpoint: Effect.succeed(checkpoint) } }))
      expect(opened.version).toBe(0)
      expect(opened.files.size).toBe(1)
      expect(tablePositions(opened, topic).get(0)).toEqual({ nextOffset: 2n, lastCaptureKey: checkpoint.partitions["0"]!.last_key })
      expect(ids(yield* tableFiles(objects))).toEqual([1, 2])
      // Opening again changes nothing.
      expect((yield* inStorage(objects, openTable({ configuration: {}, legacy: { topic, checkpoint: Effect.succeed(checkpoint) } }))).version).toBe(0)
    }))

  it.effect("refuses to write into a table with other columns", () =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      yield* inStorage(objects, Effect.flatMap(TableStorage, (s) =>
        s.write(commitPath(0), encoder.encode(`{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}\n{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\\"type\\":\\"struct\\",\\"fields\\":[{\\"name\\":\\"a\\",\\"type\\":\\"long\\",\\"nullable\\":true,\\"metadata\\":{}}]}","partitionColumns":[],"configuration":{}}}\n`))))
      const error = yield* Effect.flip(Layer.build(memoryLakeLayer(objects)).pipe(Effect.scoped))
      expect(error.message).toContain("not the orders table")
    }))
})
