import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { lakeHasFiles, lakeStatsSql, openLake, parseTimeTravel, readLakeVersion, runQuery } from "../../src/analytics/lakeQuery.ts"
import type { Order } from "../../src/domain/Order.ts"
import { deltaLake } from "../../src/layers/lake/deltaLake.ts"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { Lake } from "../../src/services/Lake.ts"
import { commitPath } from "../../src/table/logFiles.ts"
import { memoryTableSettings } from "../support/memoryTable.ts"
import { order } from "./fixtures.ts"

const topic = "orders_raw"

/** Commits each batch through the real Delta table code over `dir`; returns the versions made. */
const writeTable = (dir: string, batches: ReadonlyArray<ReadonlyArray<Order>>) =>
  Effect.gen(function*() {
    const lake = yield* Lake
    const versions: Array<number> = []
    let next = (yield* lake.positions(topic)).get(0)?.nextOffset ?? 0n
    for (const orders of batches) {
      const byDate = new Map<string, Array<Order>>()
      for (const o of orders) {
        const date = new Date(Number(o.created_at / 1000n)).toISOString().slice(0, 10)
        byDate.set(date, [...(byDate.get(date) ?? []), o])
      }
      const last = next + BigInt(orders.length) - 1n
      const committed = yield* lake.commitBatch([{
        topic,
        partition: 0,
        from: next,
        firstOffset: next,
        lastOffset: last,
        position: { nextOffset: last + 1n, lastCaptureKey: null, lastChangeKey: null },
        ordersByDate: byDate
      }])
      versions.push(committed.version)
      next = last + 1n
    }
    return versions
  }).pipe(Effect.provide(deltaLake(memoryTableSettings).pipe(Layer.provide(fileTableStorage(dir)))), Effect.scoped)

const count = (dir: string, options: { version?: number; asOf?: number } = {}) =>
  Effect.gen(function*() {
    const connection = yield* openLake(dir, options)
    const result = yield* runQuery(connection, "SELECT count(*) AS n, count(DISTINCT order_id) AS d FROM orders")
    return { rows: Number(result.rows[0]![0]), distinct: Number(result.rows[0]![1]) }
  }).pipe(Effect.scoped)

const withDir = <A, E>(use: (dir: string) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "fop-lakequery-"))),
    use,
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

const first = [order(1, "2025-01-01T10:00:00Z", 1999), order(2, "2025-01-01T11:00:00Z", 1), order(3, "2025-01-02T09:30:00Z", 50000)]
const second = [order(4, "2025-01-02T12:00:00Z", 700), order(5, "2025-01-03T08:00:00Z", 800)]

describe("openLake", () => {
  it.effect("reads the snapshot's files only: an unreferenced copy in a partition directory is not counted", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const [v1, v2] = yield* writeTable(dir, [first, second])
        // A file no version names (a compacted-away file before vacuum, a crash leftover): a glob would read it.
        const partition = join(dir, "date=2025-01-01")
        const committed = readdirSync(partition).find((f) => f.endsWith(".parquet"))!
        copyFileSync(join(partition, committed), join(partition, "part-x.parquet"))

        expect(yield* count(dir)).toEqual({ rows: 5, distinct: 5 })
        expect(yield* count(dir, { version: v1! })).toEqual({ rows: 3, distinct: 3 })
        expect(yield* count(dir, { version: v2! })).toEqual({ rows: 5, distinct: 5 })
        expect(yield* lakeHasFiles(dir)).toBe(true)

        const connection = yield* openLake(dir)
        const types = yield* runQuery(connection, "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM orders)")
        expect(Object.fromEntries(types.rows.map((r) => [r[0], r[1]]))).toMatchObject({
          order_id: "BIGINT",
          amount: "DECIMAL(10,2)",
          created_at: "TIMESTAMP WITH TIME ZONE",
          date: "DATE"
        })
        const perDate = yield* runQuery(connection, "SELECT date::VARCHAR, count(*) FROM orders GROUP BY 1 ORDER BY 1")
        expect(perDate.rows).toEqual([["2025-01-01", "2"], ["2025-01-02", "2"], ["2025-01-03", "1"]])

        const lake = yield* readLakeVersion(dir)
        expect(lake.version).toBe(v2)
        const stats = yield* runQuery(connection, lakeStatsSql(lake))
        expect(stats.rows.map((r) => r.slice(0, 3))).toEqual([
          ["2025-01-01", "1", "2"],
          ["2025-01-02", "2", "2"],
          ["2025-01-03", "1", "1"],
          [null, "4", "5"]
        ])
        expect(stats.rows[3]!.slice(4)).toEqual(["2025-01-01 10:00:00+00", "2025-01-03 08:00:00+00"])
        expect(Number(stats.rows[3]![3])).toBe(lake.files.reduce((sum, f) => sum + f.bytes, 0))
      }).pipe(Effect.scoped)))

  it.effect("takes the date from the log when a file is outside date=<value>/", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        yield* writeTable(dir, [first])
        // Rewrite the log's paths as another writer's layout would be: not under date=.
        const log = join(dir, "_delta_log")
        mkdirSync(join(dir, "flat"))
        for (const name of readdirSync(log).filter((n) => n.endsWith(".json"))) {
          const text = readFileSync(join(log, name), "utf8")
          writeFileSync(join(log, name), text.replace(/"path":"date=(\d{4}-\d{2}-\d{2})\/([^"]+)"/g, (_m, date: string, file: string) => {
            renameSync(join(dir, `date=${date}`, file), join(dir, "flat", file))
            return `"path":"flat/${file}"`
          }))
        }
        const connection = yield* openLake(dir)
        const perDate = yield* runQuery(connection, "SELECT date, typeof(date), count(*) FROM orders GROUP BY ALL ORDER BY 1")
        expect(perDate.rows).toEqual([["2025-01-01", "DATE", "2"], ["2025-01-02", "DATE", "1"]])
      }).pipe(Effect.scoped)))

  it.effect("no table, or no files: the empty typed view", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        expect(yield* count(join(dir, "missing"))).toEqual({ rows: 0, distinct: 0 })
        expect(yield* lakeHasFiles(dir)).toBe(false)
        writeFileSync(join(dir, "part-stray.parquet"), "not parquet")
        const connection = yield* openLake(dir)
        const types = yield* runQuery(connection, "SELECT typeof(date), typeof(amount) FROM (SELECT * FROM orders UNION ALL SELECT * FROM orders) LIMIT 1")
        expect(types.rows).toEqual([])
        expect((yield* count(dir, { version: 0 }).pipe(Effect.flip))._tag).toBe("TableError")
      }).pipe(Effect.scoped)))

  it.effect("a damaged commit fails naming the file, never falls back to the directory", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const [v1] = yield* writeTable(dir, [first])
        const broken = join(dir, ...commitPath(v1! + 1).split("/"))
        writeFileSync(broken, "{\"add\":{\"path\":")
        const error = yield* count(dir).pipe(Effect.flip)
        expect(error._tag).toBe("TableError")
        expect(error.message).toContain(broken)
        // An older version is still readable.
        expect(yield* count(dir, { version: v1! })).toEqual({ rows: 3, distinct: 3 })
      })))

  it.effect("--as-of picks the version current at that time", () =>
    withDir((dir) =>
      Effect.gen(function*() {
        const [v1] = yield* writeTable(dir, [first])
        const at = (yield* readLakeVersion(dir)).timestamp
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
        yield* writeTable(dir, [second])
        expect((yield* readLakeVersion(dir, { asOf: at })).version).toBe(v1)
        expect(yield* count(dir, { asOf: at })).toEqual({ rows: 3, distinct: 3 })
        expect(yield* count(dir, { asOf: Date.now() + 1000 })).toEqual({ rows: 5, distinct: 5 })
      })))
})

describe("parseTimeTravel", () => {
  it("parses --version and --as-of, and names what is wrong", () => {
    expect(parseTimeTravel({})).toEqual({})
    expect(parseTimeTravel({ version: "12" })).toEqual({ version: 12 })
    expect(parseTimeTravel({ asOf: "2026-11-25T17:00:00Z" })).toEqual({ asOf: Date.UTC(2026, 10, 25, 17) })
    expect(parseTimeTravel({ asOf: "2026-11-25T17:00:00" })).toEqual({ asOf: Date.UTC(2026, 10, 25, 17) })
    expect(parseTimeTravel({ asOf: "2026-11-25 18:00:00+01:00" })).toEqual({ asOf: Date.UTC(2026, 10, 25, 17) })
    expect(parseTimeTravel({ asOf: "2026-11-25" })).toEqual({ asOf: Date.UTC(2026, 10, 25) })
    expect(parseTimeTravel({ version: "-1" })).toMatch(/--version: expected .*"-1"/)
    expect(parseTimeTravel({ version: "1.5" })).toMatch(/--version/)
    expect(parseTimeTravel({ asOf: "yesterday" })).toMatch(/--as-of: expected an ISO 8601 time .*"yesterday"/)
    expect(parseTimeTravel({ asOf: "2026-02-30T00:00:00Z" })).toMatch(/--as-of/)
    expect(parseTimeTravel({ version: "1", asOf: "2026-11-25" })).toMatch(/cannot be used together/)
  })
})
