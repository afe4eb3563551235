/**
 * The Delta table's behaviour on a storage, as one set of cases run over every TableStorage:
 * memory in the unit project (test/unit/table.test.ts), S3 in the integration project
 * (test/integration/tableS3.test.ts). Each case gets a fresh, empty table location.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect, Layer, type Scope } from "effect"
import type { Checkpoint } from "../../src/domain/Checkpoint.ts"
import type { Order } from "../../src/domain/Order.ts"
import { deltaLake } from "../../src/layers/lake/deltaLake.ts"
import { Lake } from "../../src/services/Lake.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { type Action, parseCommit } from "../../src/table/actions.ts"
import { commit } from "../../src/table/commit.ts"
import { planCompaction } from "../../src/table/compaction.ts"
import { streamFilePath } from "../../src/table/dataPaths.ts"
import { commitPath, lastCheckpointPath } from "../../src/table/logFiles.ts"
import { cleanupLog, vacuum } from "../../src/table/cleanup.ts"
import { compactUntilDone } from "../../src/table/maintenance.ts"
import { writeCheckpoint } from "../../src/table/writeCheckpoint.ts"
import { ordersFileBytes } from "../../src/table/ordersFile.ts"
import { openTable } from "../../src/table/openTable.ts"
import { tablePositions } from "../../src/table/positions.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { ordersFormat } from "../../src/table/tableFormat.ts"
import { order } from "../unit/fixtures.ts"
import { liveFileRows, memoryTableSettings } from "./memoryTable.ts"

export type Storage = Context.Tag.Service<typeof TableStorage>

export interface TableStore {
  readonly name: string
  /** A fresh, empty table location, alive for the test's scope. */
  readonly fresh: Effect.Effect<Storage, unknown, Scope.Scope>
  /** Per-case timeout (object stores are slower than memory). */
  readonly timeout?: number
}

const topic = "orders_raw"
const encoder = new TextEncoder()
const decoder = new TextDecoder()

const inStorage = <A, E>(storage: Storage, effect: Effect.Effect<A, E, TableStorage>) =>
  Effect.provideService(effect, TableStorage, storage)

const lakeOver = (storage: Storage) => deltaLake(memoryTableSettings).pipe(Layer.provide(Layer.succeed(TableStorage, storage)))

/** Commits `batches` through the real Lake, as the consumer would: one version per batch. */
const commitOrders = (storage: Storage, batches: ReadonlyArray<ReadonlyArray<Order>>) =>
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
        position: { nextOffset: offset + BigInt(orders.length), lastCaptureKey: null, lastChangeKey: null },
        ordersByDate: byDate
      }])
      offset += BigInt(orders.length)
    }
  }).pipe(Effect.provide(lakeOver(storage)))

/** The table's current live files and their rows, in commit order. */
const tableFiles = (storage: Storage) => inStorage(storage, liveFileRows).pipe(Effect.orDie)

const ids = (files: ReadonlyMap<string, ReadonlyArray<Order>>) => [...files.values()].flat().map((o) => o.order_id)

const exists = (storage: Storage, path: string) => storage.read(path).pipe(Effect.map((found) => found !== null))

export const fakeAdd = (name: string): Action => ({
  add: { path: `date=2025-01-15/${name}.parquet`, partitionValues: { date: "2025-01-15" }, size: 1, modificationTime: Date.now(), dataChange: true }
})

export const tableCases = (store: TableStore): void => {
  const timeout = store.timeout
  describe(`delta table over ${store.name}`, () => {
    it.scoped("commits files with the partition's position, one version per batch", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        yield* commitOrders(storage, [[order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-16T10:00:00Z")], [order(3, "2025-01-16T11:00:00Z")]])
        const snapshot = yield* inStorage(storage, loadSnapshot())
        expect(snapshot.version).toBe(2)
        expect(snapshot.files.size).toBe(3)
        expect(tablePositions(snapshot, topic).get(0)?.nextOffset).toBe(3n)
        expect((yield* inStorage(storage, loadSnapshot({ version: 1 }))).files.size).toBe(2)
        expect(ids(yield* tableFiles(storage)).sort()).toEqual([1, 2, 3])
        const actions = parseCommit(decoder.decode((yield* storage.read(commitPath(2)))!.bytes))
        expect(actions.filter((a) => "txn" in a)).toHaveLength(1)
        expect(actions.filter((a) => "add" in a)).toHaveLength(1)
      }), timeout)

    it.scoped("racing commits: blind appends all land on distinct versions; conflicting ones leave exactly one winner", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        const opened = yield* inStorage(storage, openTable({ configuration: {}, legacy: { topic, checkpoint: Effect.succeed(undefined) } }))
        const writers = 8
        const appended = yield* Effect.forEach(Array.from({ length: writers }, (_, i) => i), (i) =>
          inStorage(storage, commit(opened, { actions: [fakeAdd(`append-${i}`)], operation: "WRITE", isBlindAppend: true, format: ordersFormat, conflictsWith: () => undefined })), { concurrency: "unbounded" })
        expect(appended.map((c) => c.version).sort((a, b) => a - b)).toEqual(Array.from({ length: writers }, (_, i) => opened.version + 1 + i))
        const afterAppends = yield* inStorage(storage, loadSnapshot())
        expect(afterAppends.files.size).toBe(writers)
        const outcomes = yield* Effect.forEach(Array.from({ length: writers }, (_, i) => i), (i) =>
          inStorage(storage, commit(afterAppends, { actions: [fakeAdd(`exclusive-${i}`)], operation: "WRITE", format: ordersFormat, conflictsWith: () => "same files" })).pipe(
            Effect.either
          ), { concurrency: "unbounded" })
        const winners = outcomes.filter((o) => o._tag === "Right")
        expect(winners).toHaveLength(1)
        expect(outcomes.filter((o) => o._tag === "Left").every((o) => o._tag === "Left" && o.left._tag === "CommitConflict")).toBe(true)
        const final = yield* inStorage(storage, loadSnapshot())
        expect(final.version).toBe(afterAppends.version + 1)
        expect(final.files.size).toBe(writers + 1)
      }), timeout)

    it.scoped("compaction merges a full tier into one file, keeping every row once and in order", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        yield* commitOrders(storage, Array.from({ length: 10 }, (_, i) => [order(i + 1, `2025-01-15T10:00:${String(i).padStart(2, "0")}Z`)]))
        const before = yield* inStorage(storage, loadSnapshot())
        const settings = { targetFileBytes: 1 << 20, fanIn: 4, idleMs: 3_600_000 }
        expect(planCompaction(before, settings)).toHaveLength(1)
        const report = yield* inStorage(storage, compactUntilDone(before, settings))
        expect(report).toMatchObject({ merged: 1, inputs: 10, rows: 10 })
        const after = yield* inStorage(storage, loadSnapshot())
        expect(after.files.size).toBe(1)
        expect([...after.files.values()][0]!.dataChange).toBe(false)
        expect(ids(yield* tableFiles(storage))).toEqual(Array.from({ length: 10 }, (_, i) => i + 1))
        // Same rows at the old version: readers of it see what they saw.
        expect((yield* inStorage(storage, loadSnapshot({ version: before.version }))).files.size).toBe(10)
        expect(tablePositions(after, topic).get(0)?.nextOffset).toBe(10n)
      }), timeout)

    it.scoped("a partition gone quiet is merged whole; a busy one only by tiers", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        yield* commitOrders(storage, Array.from({ length: 5 }, (_, i) => [order(i + 1, `2025-01-15T10:00:0${i}Z`), order(i + 10, `2025-01-16T10:00:0${i}Z`)]))
        const snapshot = yield* inStorage(storage, loadSnapshot())
        const settings = { targetFileBytes: 1 << 20, fanIn: 8, idleMs: 60_000 }
        // 5 files per partition: below the fan-in, and the newest is seconds old.
        expect(planCompaction(snapshot, settings)).toEqual([])
        const later = Date.now() + 61_000
        expect(planCompaction(snapshot, settings, later).map((g) => [g.partitionValues["date"], g.files.length])).toEqual([["2025-01-15", 5], ["2025-01-16", 5]])
        const report = yield* inStorage(storage, compactUntilDone(snapshot, { ...settings, idleMs: 0 }))
        expect(report.merged).toBe(2)
        const after = yield* inStorage(storage, loadSnapshot())
        expect(after.files.size).toBe(2)
        expect(planCompaction(after, { ...settings, idleMs: 0 })).toEqual([])
      }), timeout)

    it.scoped("reads from its own checkpoint after the log before it is cleaned up", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        yield* commitOrders(storage, Array.from({ length: 5 }, (_, i) => [order(i + 1, "2025-01-15T10:00:00Z")]))
        const snapshot = yield* inStorage(storage, loadSnapshot())
        // A cutoff a minute ahead: every commit before the checkpoint may go. (A cutoff of now + 1 ms
        // was flaky: commit times are made strictly increasing, so six commits within a millisecond
        // or two put the checkpoint's own commit time after it.)
        // The mechanism, with a cutoff of our choosing (the table's own retention properties would keep
        // everything younger than an hour: retention.test.ts).
        const cutoff = Date.now() + 60_000
        const done = yield* inStorage(storage, writeCheckpoint(snapshot, cutoff))
        expect(done.version).toBe(5)
        expect(yield* inStorage(storage, cleanupLog(cutoff))).toBe(5)
        expect(yield* exists(storage, commitPath(0))).toBe(false)
        const reread = yield* inStorage(storage, loadSnapshot())
        expect(reread.version).toBe(5)
        expect([...reread.files.keys()].sort()).toEqual([...snapshot.files.keys()].sort())
        expect(tablePositions(reread, topic).get(0)?.nextOffset).toBe(5n)
        const old = yield* Effect.flip(inStorage(storage, loadSnapshot({ version: 2 })))
        expect(old.message).toContain("00000000000000000000.json")
        // A new writer (a restarted consumer) opens from the checkpoint and goes on.
        yield* commitOrders(storage, [[order(6, "2025-01-15T10:00:00Z")]])
        expect(ids(yield* tableFiles(storage)).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([1, 2, 3, 4, 5, 6])
      }), timeout)

    it.scoped("vacuum removes only unreferenced files older than the retention", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        yield* commitOrders(storage, [[order(1, "2025-01-15T10:00:00Z")]])
        // A crash leftover of ours: written, never committed.
        const orphan = streamFilePath("date=2025-01-15/", topic, 0, 7n, 9n)
        yield* storage.write(orphan, ordersFileBytes([order(9, "2025-01-15T10:00:00Z")]))
        // Another engine's file for a commit its job has not made yet (Spark's naming).
        const foreign = "date=2025-01-15/part-00000-0f6c2a7e-3d1b-4c55-9a1e-6f0b2c9d8e7a.c000.snappy.parquet"
        yield* storage.write(foreign, ordersFileBytes([order(10, "2025-01-15T10:00:00Z")]))
        const snapshot = yield* inStorage(storage, loadSnapshot())
        const past = Date.now() - 60_000
        const future = Date.now() + 60_000
        expect((yield* inStorage(storage, vacuum(snapshot, past, past))).removed).toBe(0)
        const swept = yield* inStorage(storage, vacuum(snapshot, future, past))
        expect(swept.removed).toBe(1)
        expect(yield* exists(storage, orphan)).toBe(false)
        // Past our retention, not past the floor for files we did not write (7 days by default).
        expect(yield* exists(storage, foreign)).toBe(true)
        expect((yield* inStorage(storage, vacuum(snapshot, future, future))).removed).toBe(1)
        expect(yield* exists(storage, foreign)).toBe(false)
        expect(ids(yield* tableFiles(storage))).toEqual([1])
        // Compacted-away files: kept while a version within the retention names them, then removed.
        yield* commitOrders(storage, [[order(2, "2025-01-15T11:00:00Z")]])
        const beforeMerge = yield* inStorage(storage, loadSnapshot())
        const merged = yield* inStorage(storage, compactUntilDone(beforeMerge, { targetFileBytes: 1 << 20, fanIn: 2, idleMs: 0 }))
        expect(merged.merged).toBe(1)
        expect((yield* inStorage(storage, vacuum(merged.snapshot, past, past))).removed).toBe(0)
        const later = Date.now() + 60_000
        expect((yield* inStorage(storage, vacuum(merged.snapshot, later, past))).removed).toBe(2)
        expect(ids(yield* tableFiles(storage)).sort()).toEqual([1, 2])
      }), timeout)

    it.scoped("a damaged commit, a missing checkpoint and an unknown reader feature are named", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        yield* commitOrders(storage, [[order(1, "2025-01-15T10:00:00Z")], [order(2, "2025-01-15T10:00:00Z")]])
        const put = (path: string, text: string) => storage.write(path, encoder.encode(text))
        const original = (yield* storage.read(commitPath(2)))!.bytes
        yield* put(commitPath(2), decoder.decode(original).slice(0, 40))
        expect((yield* Effect.flip(inStorage(storage, loadSnapshot()))).message).toMatch(/corrupt.*00000000000000000002\.json/)
        yield* put(commitPath(2), "")
        expect((yield* Effect.flip(inStorage(storage, loadSnapshot()))).message).toContain("empty commit")
        yield* storage.write(commitPath(2), original)
        yield* put(lastCheckpointPath, `{"version":2,"size":4}`)
        expect((yield* Effect.flip(inStorage(storage, loadSnapshot()))).message).toMatch(/missing.*00000000000000000002\.checkpoint\.parquet/)
        yield* storage.remove(lastCheckpointPath)
        yield* put(commitPath(3), `{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}}\n`)
        expect((yield* Effect.flip(inStorage(storage, loadSnapshot()))).message).toMatch(/unsupported.*deletionVectors/)
      }), timeout)

    it.scoped("turns a lake of the previous release into a table, taking the checkpoint's offsets", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        const write = (path: string, orders: ReadonlyArray<Order>) => storage.write(path, ordersFileBytes(orders))
        yield* write(`date=2025-01-15/part-${topic}-0-00000000000000000000-00000000000000000001.parquet`, [order(1, "2025-01-15T10:00:00Z"), order(2, "2025-01-15T11:00:00Z")])
        // Written past the checkpoint by a run that died: the old consumer would have deleted it.
        yield* write(`date=2025-01-15/part-${topic}-0-00000000000000000002-00000000000000000002.parquet`, [order(3, "2025-01-15T12:00:00Z")])
        const checkpoint: Checkpoint = { topic, partitions: { "0": { next_offset: 2n, last_key: { created_at: order(2, "2025-01-15T11:00:00Z").created_at, order_id: 2 } } } }
        const open = inStorage(storage, openTable({ configuration: {}, legacy: { topic, checkpoint: Effect.succeed(checkpoint) } }))
        const opened = yield* open
        expect(opened.version).toBe(0)
        expect(opened.files.size).toBe(1)
        expect(tablePositions(opened, topic).get(0)).toEqual({ nextOffset: 2n, lastCaptureKey: checkpoint.partitions["0"]!.last_key, lastChangeKey: null })
        expect(ids(yield* tableFiles(storage))).toEqual([1, 2])
        // Opening again changes nothing.
        expect((yield* open).version).toBe(0)
      }), timeout)

    it.scoped("refuses to write into a table with other columns", () =>
      Effect.gen(function*() {
        const storage = yield* store.fresh
        yield* storage.write(
          commitPath(0),
          encoder.encode(`{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}\n{"metaData":{"id":"x","format":{"provider":"parquet","options":{}},"schemaString":"{\\"type\\":\\"struct\\",\\"fields\\":[{\\"name\\":\\"a\\",\\"type\\":\\"long\\",\\"nullable\\":true,\\"metadata\\":{}}]}","partitionColumns":[],"configuration":{}}}\n`)
        )
        const error = yield* Effect.flip(Layer.build(lakeOver(storage)).pipe(Effect.scoped))
        expect(error.message).toContain("not the orders table")
      }), timeout)
  })
}
