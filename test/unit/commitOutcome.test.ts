/**
 * A commit's write can land and still report an error (a connection cut after S3 applied the PUT, a
 * directory fsync failing after the link), or be answered "taken" by our own earlier request (409
 * then 412 on S3). The table code must then recognise its own commit, and never delete files a
 * version may name. The same cases on the real S3 server: test/integration/tableStorageS3.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Order } from "../../src/domain/Order.ts"
import { deltaLake } from "../../src/layers/lake/deltaLake.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { StorageError } from "../../src/services/errors.ts"
import { type ChangeAt, Lake, type LakeBatch } from "../../src/services/Lake.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { commit } from "../../src/table/commit.ts"
import { compactGroup } from "../../src/table/compaction.ts"
import { storagePathOf } from "../../src/table/dataPaths.ts"
import { parseLogEntry } from "../../src/table/logFiles.ts"
import { openTable } from "../../src/table/openTable.ts"
import { readOrdersFile } from "../../src/table/ordersFile.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { ordersFormat } from "../../src/table/tableFormat.ts"
import { memoryTableSettings } from "../support/memoryTable.ts"
import { fakeAdd } from "../support/tableCases.ts"
import { order } from "./fixtures.ts"

interface Faults {
  /** Commit writes that fail without landing. */
  failBeforeLanding: number
  /** Commit writes that land, then report a failure (the response lost). */
  landThenFail: number
  /** Commit writes that land, then are answered "taken" (our own first request hid behind a retry). */
  landThenTaken: number
  /** Reads of commit files fail (the storage is down for the read-back too). */
  failLogReads: boolean
}

const noFaults = (): Faults => ({ failBeforeLanding: 0, landThenFail: 0, landThenTaken: 0, failLogReads: false })

const isCommitFile = (path: string) => parseLogEntry(path)?.kind === "commit"

const cut = (path: string) => new StorageError({ path, operation: "write", cause: new Error("socket hang up"), reason: "unreachable" })

/** The memory storage with faults on the log's commit files, decided when each call runs. */
const faultyStorage = (inner: TableStorage["Type"], faults: Faults): TableStorage["Type"] => ({
  ...inner,
  writeIfAbsent: (path, bytes) =>
    Effect.suspend(() => {
      if (!isCommitFile(path)) return inner.writeIfAbsent(path, bytes)
      if (faults.failBeforeLanding > 0) {
        faults.failBeforeLanding -= 1
        return Effect.fail(cut(path))
      }
      if (faults.landThenFail > 0) {
        faults.landThenFail -= 1
        return Effect.zipRight(inner.writeIfAbsent(path, bytes), Effect.fail(cut(path)))
      }
      if (faults.landThenTaken > 0) {
        faults.landThenTaken -= 1
        return Effect.as(inner.writeIfAbsent(path, bytes), false)
      }
      return inner.writeIfAbsent(path, bytes)
    }),
  read: (path) =>
    Effect.suspend(() =>
      faults.failLogReads && isCommitFile(path)
        ? Effect.fail(new StorageError({ path, operation: "read", cause: new Error("connection refused"), reason: "unreachable" }))
        : inner.read(path)
    )
})

const setup = Effect.gen(function*() {
  const objects = yield* makeMemoryObjects
  const inner = Context.get(yield* Layer.build(memoryTableStorage(objects)), TableStorage)
  const faults = noFaults()
  return { storage: faultyStorage(inner, faults), inner, faults }
})


const appendRequest = (name: string) => ({
  actions: [fakeAdd(name)],
  operation: "WRITE",
  isBlindAppend: true,
  format: ordersFormat,
  conflictsWith: () => undefined
})

/** The commit versions in the log, and how many of them add `path`. */
const versionsAdding = (storage: TableStorage["Type"], name: string) =>
  Effect.gen(function*() {
    const snapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
    const log = yield* storage.list("_delta_log/")
    let adding = 0
    for (const object of log.filter((o) => isCommitFile(o.path))) {
      const text = new TextDecoder().decode((yield* storage.read(object.path))!.bytes)
      if (text.includes(`${name}.parquet`)) adding += 1
    }
    return { version: snapshot.version, adding }
  })

/** Every live file of the table exists and reads: what a reader (Spark, DuckDB) needs. */
const liveRows = (storage: TableStorage["Type"]) =>
  Effect.gen(function*() {
    const snapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
    const rows: Array<Order> = []
    const missing: Array<string> = []
    for (const add of snapshot.files.values()) {
      const found = yield* storage.read(storagePathOf(add.path, storage.root))
      if (found === null) missing.push(add.path)
      else rows.push(...(yield* Effect.promise(() => readOrdersFile(found.bytes))))
    }
    return { missing, rows: rows.sort((a, b) => a.order_id - b.order_id) }
  })

const opened = (storage: TableStorage["Type"]) =>
  openTable({ configuration: {}, legacy: { topic: "t", checkpoint: Effect.succeed(undefined) } }).pipe(Effect.provideService(TableStorage, storage))

describe("a commit whose outcome the storage misreported", () => {
  it.scopedLive("landed but reported an error: the commit is ours, once", () =>
    Effect.gen(function*() {
      const { storage, faults } = yield* setup
      const start = yield* opened(storage)
      faults.landThenFail = 1
      const done = yield* commit(start, appendRequest("a")).pipe(Effect.provideService(TableStorage, storage))
      expect(done.version).toBe(start.version + 1)
      expect(yield* versionsAdding(storage, "a")).toEqual({ version: start.version + 1, adding: 1 })
    }))

  it.scopedLive("answered 'taken' by our own earlier request: the commit is ours, not written a second time", () =>
    Effect.gen(function*() {
      const { storage, faults } = yield* setup
      const start = yield* opened(storage)
      faults.landThenTaken = 1
      const done = yield* commit(start, appendRequest("b")).pipe(Effect.provideService(TableStorage, storage))
      expect(done.version).toBe(start.version + 1)
      // Before: the version was read as another writer's blind append and ours went after it, twice in the log.
      expect(yield* versionsAdding(storage, "b")).toEqual({ version: start.version + 1, adding: 1 })
    }))

  it.scopedLive("failed before landing: written again at the same version", () =>
    Effect.gen(function*() {
      const { storage, faults } = yield* setup
      const start = yield* opened(storage)
      faults.failBeforeLanding = 1
      const done = yield* commit(start, appendRequest("c")).pipe(Effect.provideService(TableStorage, storage))
      expect(done.version).toBe(start.version + 1)
      expect(yield* versionsAdding(storage, "c")).toEqual({ version: start.version + 1, adding: 1 })
    }))

  it.scopedLive("a winner that is not ours still conflicts or is stepped over as before", () =>
    Effect.gen(function*() {
      const { storage, inner } = yield* setup
      const start = yield* opened(storage)
      yield* commit(start, appendRequest("other")).pipe(Effect.provideService(TableStorage, inner))
      const conflict = yield* commit(start, { ...appendRequest("mine"), conflictsWith: () => "same files" }).pipe(
        Effect.provideService(TableStorage, storage),
        Effect.flip
      )
      expect(conflict._tag).toBe("CommitConflict")
      const after = yield* commit(start, appendRequest("mine")).pipe(Effect.provideService(TableStorage, storage))
      expect(after.version).toBe(start.version + 2)
    }))

  it.scopedLive("unknown outcome (the read-back fails too): a StorageError, and the log is left as the storage has it", () =>
    Effect.gen(function*() {
      const { storage, faults } = yield* setup
      const start = yield* opened(storage)
      faults.landThenFail = 1
      faults.failLogReads = true
      const error = yield* commit(start, appendRequest("d")).pipe(Effect.provideService(TableStorage, storage), Effect.flip)
      expect(error._tag).toBe("StorageError")
      faults.failLogReads = false
      expect(yield* versionsAdding(storage, "d")).toEqual({ version: start.version + 1, adding: 1 })
    }))
})

const topic = "orders_raw"
const batch = (from: bigint, orders: ReadonlyArray<Order>, changes?: ReadonlyArray<ChangeAt>): LakeBatch => ({
  topic,
  partition: 0,
  from,
  firstOffset: from,
  lastOffset: from,
  position: { nextOffset: from + 1n, lastCaptureKey: null, lastChangeKey: null },
  ordersByDate: new Map(orders.length === 0 ? [] : [["2025-01-15", orders]]),
  ...(changes === undefined ? {} : { changes })
})

describe("files of a commit whose outcome is unknown are kept", () => {
  const orders = [1, 2, 3, 4].map((id) => order(id, "2025-01-15T10:00:00Z"))

  it.scopedLive("compaction: the merged file a landed commit names is not deleted", () =>
    Effect.gen(function*() {
      const { storage, faults } = yield* setup
      yield* Effect.gen(function*() {
        const lake = yield* Lake
        for (const [i, pair] of [orders.slice(0, 2), orders.slice(2)].entries()) yield* lake.commitBatch([batch(BigInt(i), pair)])
      }).pipe(Effect.provide(deltaLake(memoryTableSettings).pipe(Layer.provide(Layer.succeed(TableStorage, storage)))), Effect.scoped)
      const snapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      faults.landThenFail = 1
      faults.failLogReads = true
      const error = yield* compactGroup(snapshot, { partitionValues: { date: "2025-01-15" }, files: [...snapshot.files.values()] }).pipe(
        Effect.provideService(TableStorage, storage),
        Effect.flip
      )
      expect(error._tag).toBe("StorageError")
      faults.failLogReads = false
      const after = yield* liveRows(storage)
      expect(after.missing).toEqual([])
      expect(after.rows.map((o) => o.order_id)).toEqual([1, 2, 3, 4])
      expect((yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))).files.size).toBe(1)
    }))

  it.scopedLive("a batch of changes: the rewritten and new files a landed commit names are not deleted", () =>
    Effect.gen(function*() {
      const { storage, faults } = yield* setup
      const layer = deltaLake(memoryTableSettings).pipe(Layer.provide(Layer.succeed(TableStorage, storage)))
      const update = (o: Order, seq: number): ChangeAt => ({
        offset: 1n,
        op: "update",
        orderId: o.order_id,
        order: { ...o, order_status: "DELIVERED" },
        key: { epoch: 0, lsn: 100n, phase: 1, seq },
        commitTime: null,
        xid: null
      })
      const error = yield* Effect.gen(function*() {
        const lake = yield* Lake
        yield* lake.commitBatch([batch(0n, orders)])
        faults.landThenFail = 1
        faults.failLogReads = true
        return yield* lake.commitBatch([batch(1n, [], [update(orders[0]!, 0), update(orders[2]!, 1)])]).pipe(Effect.flip)
      }).pipe(Effect.provide(layer), Effect.scoped)
      expect(error._tag).toBe("StorageError")
      faults.failLogReads = false
      const after = yield* liveRows(storage)
      expect(after.missing).toEqual([])
      expect(after.rows.map((o) => [o.order_id, o.order_status])).toEqual([[1, "DELIVERED"], [2, "PLACED"], [3, "DELIVERED"], [4, "PLACED"]])
    }))
})

