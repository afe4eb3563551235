/**
 * Tables that are not the orders' (issue 19), written, compacted and rewritten by key by our table
 * code, read by real Spark + Delta: an unpartitioned table (files at its root) and one partitioned by
 * `region` with a null partition and a value that must be escaped in its directory name.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, Logger, LogLevel } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { compactUntilDone } from "../../src/table/maintenance.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { rewriteWithoutKeys } from "../../src/table/rewrite.ts"
import { sampleFormat, sampleKey, type SampleRow } from "../support/sampleFormat.ts"
import { appendRows, commitActions, sampleRows, stageRows } from "../support/sampleTable.ts"
import { type SparkSession, sparkSkipReason, startSpark } from "../support/spark.ts"

const skipReason = sparkSkipReason()

const row = (id: string, n: number, v: number | null, region: string | null): SampleRow => ({ id, n, v, region })

/** Three appends, a compaction, then (a,2) replaced and (c,1) deleted by key: what our code writes. */
const writeTable = (root: string, partitioned: boolean) =>
  Effect.gen(function*() {
    const storage = Context.get(yield* Layer.build(fileTableStorage(root)), TableStorage)
    const format = sampleFormat(partitioned)
    const regions = partitioned ? ["eu", null, "a/b=c"] : [null]
    for (let batch = 0; batch < 3; batch++) {
      yield* appendRows(storage, format, ["a", "b", "c"].map((id, i) => row(id, batch, batch * 10 + i, regions[(batch + i) % regions.length]!)))
    }
    const start = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
    const compacted = yield* compactUntilDone(start, { targetFileBytes: 1024 * 1024, fanIn: 2, idleMs: 60_000 }, 64, format).pipe(
      Effect.provideService(TableStorage, storage)
    )
    const keys = new Set([sampleKey("a", 2), sampleKey("c", 1)])
    const rewrite = yield* rewriteWithoutKeys(compacted.snapshot, format, keys, Date.now()).pipe(Effect.provideService(TableStorage, storage))
    const replaced = rewrite.before.get(sampleKey("a", 2))!
    const { staged } = yield* stageRows(storage, format, [{ ...replaced, v: 999 }])
    yield* commitActions(storage, format, [...rewrite.actions, ...staged.map((f) => f.add)], compacted.snapshot)
    return { rows: yield* sampleRows(storage, format), merged: compacted.merged, dropped: rewrite.dropped }
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning), Effect.runPromise)

describe.skipIf(skipReason !== null)(`tables of any partitioning, read by Spark${skipReason === null ? "" : ` (skipped: ${skipReason})`}`, () => {
  let spark: SparkSession
  let dir: string

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "any-table-spark-"))
    spark = await startSpark()
  }, 120_000)

  afterAll(async () => {
    await spark?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it("Spark reads an unpartitioned table and one with a null partition as our code wrote them", async () => {
    const tables = [
      { root: join(dir, "flat"), partitioned: false },
      { root: join(dir, "by_region"), partitioned: true }
    ]
    for (const table of tables) {
      const ours = await writeTable(table.root, table.partitioned)
      expect(ours.merged).toBeGreaterThan(0)
      expect(ours.dropped).toBe(2)
      // 9 rows written, (c,1) deleted, (a,2) replaced.
      expect(ours.rows.length).toBe(8)
      expect(ours.rows.find((r) => r.id === "a" && r.n === 2)?.v).toBe(999)
      const columns = table.partitioned ? "id, n, v, region" : "id, n, v"
      const result = await spark.sql(`SELECT ${columns} FROM delta.\`${table.root}\` ORDER BY id, n`)
      expect(result.rows).toEqual(ours.rows.map((r) => (table.partitioned ? [r.id, r.n, r.v, r.region] : [r.id, r.n, r.v])))
      if (table.partitioned) {
        const counts = await spark.sql(
          `SELECT count(*), count_if(region IS NULL), count_if(region = 'a/b=c') FROM delta.\`${table.root}\``
        )
        expect(counts.rows).toEqual([[8, ours.rows.filter((r) => r.region === null).length, ours.rows.filter((r) => r.region === "a/b=c").length]])
        expect(ours.rows.some((r) => r.region === null) && ours.rows.some((r) => r.region === "a/b=c")).toBe(true)
      }
    }
  }, 240_000)
})
