/**
 * The real S3 server (S3Proxy, MinIO) behind a proxy that loses the response to a commit's PUT after
 * the server applied it: the table code must find its own commit in the log and keep the files it
 * names (test/unit/commitOutcome.test.ts has the same cases over a fault-injecting storage).
 */
import { expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import type { Order } from "../../src/domain/Order.ts"
import { deltaLake } from "../../src/layers/lake/deltaLake.ts"
import { Lake, type LakeBatch } from "../../src/services/Lake.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { compactGroup } from "../../src/table/compaction.ts"
import { storagePathOf } from "../../src/table/dataPaths.ts"
import { readOrdersFile } from "../../src/table/ordersFile.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { describeS3 } from "../support/endpoints.ts"
import { memoryTableSettings } from "../support/memoryTable.ts"
import { startLossyS3Proxy } from "../support/lossyS3Proxy.ts"
import { freshS3Storage } from "../support/s3Storage.ts"
import { order } from "../unit/fixtures.ts"

const batch = (from: bigint, orders: ReadonlyArray<Order>): LakeBatch => ({
  topic: "orders_raw",
  partition: 0,
  from,
  firstOffset: from,
  lastOffset: from,
  position: { nextOffset: from + 1n, lastCaptureKey: null, lastChangeKey: null },
  ordersByDate: new Map([["2025-01-15", orders]])
})

describeS3("a commit on S3 whose response is lost after the server applied it", (s3) => {
  it.scopedLive("compaction: the commit is found to be ours and the merged file stays; the table reads whole", () =>
    Effect.gen(function*() {
      let toLose = 0
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => startLossyS3Proxy(s3.endpoint, () => toLose > 0 && toLose-- > 0)),
        (p) => Effect.promise(p.close)
      )
      const storage = yield* freshS3Storage(s3, "lost-response", { endpoint: proxy.endpoint })
      const orders = [1, 2, 3, 4].map((id) => order(id, "2025-01-15T10:00:00Z"))
      yield* Effect.gen(function*() {
        const lake = yield* Lake
        yield* lake.commitBatch([batch(0n, orders.slice(0, 2))])
        yield* lake.commitBatch([batch(1n, orders.slice(2))])
      }).pipe(Effect.provide(deltaLake(memoryTableSettings).pipe(Layer.provide(Layer.succeed(TableStorage, storage)))), Effect.scoped)
      const snapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      // Every attempt the SDK makes (3) loses its answer: the call fails, the first PUT landed.
      toLose = 3
      const merged = yield* compactGroup(snapshot, { partitionValues: { date: "2025-01-15" }, files: [...snapshot.files.values()] }).pipe(
        Effect.provideService(TableStorage, storage)
      )
      expect(proxy.lost()).toBeGreaterThanOrEqual(1)
      expect(merged.version).toBe(snapshot.version + 1)
      const after = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      expect(after.version).toBe(snapshot.version + 1)
      expect(after.files.size).toBe(1)
      const rows: Array<number> = []
      for (const add of after.files.values()) {
        const found = yield* storage.read(storagePathOf(add.path, storage.root))
        expect(found, `live file ${add.path}`).not.toBeNull()
        rows.push(...(yield* Effect.promise(() => readOrdersFile(found!.bytes))).map((o) => o.order_id))
      }
      expect(rows.sort()).toEqual([1, 2, 3, 4])
    }), 120_000)
})
