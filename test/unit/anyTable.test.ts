import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { parseCommit } from "../../src/table/actions.ts"
import { compactUntilDone } from "../../src/table/maintenance.ts"
import {
  compactedFilePath,
  isOwnFile,
  logPathOf,
  partitionDir,
  rewrittenFilePath,
  storagePathOf,
  streamFilePath
} from "../../src/table/dataPaths.ts"
import { commitPath } from "../../src/table/logFiles.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { findRowsByKey, rewriteWithoutKeys } from "../../src/table/rewrite.ts"
import { sampleFormat, sampleKey, type SampleRow } from "../support/sampleFormat.ts"
import { appendRows, commitActions, sampleFiles, sampleRows, stageRows } from "../support/sampleTable.ts"

const freshStorage = makeMemoryObjects.pipe(
  Effect.flatMap((objects) => Layer.build(memoryTableStorage(objects))),
  Effect.map((context) => Context.get(context, TableStorage))
)

const byRegion = sampleFormat(true)
const flat = sampleFormat(false)

const row = (id: string, n: number, v: number | null, region: string | null): SampleRow => ({ id, n, v, region })

const commitInfoOf = (storage: TableStorage["Type"], version: number) =>
  storage.read(commitPath(version)).pipe(
    Effect.map((found) => parseCommit(new TextDecoder().decode(found!.bytes)).flatMap((a) => ("commitInfo" in a ? [a.commitInfo] : []))[0]!)
  )

const settings = { targetFileBytes: 1024 * 1024, fanIn: 3, idleMs: 60_000 }

describe("data paths of any partitioning", () => {
  it("names partition directories as Spark does, and the log's paths read back as the storage's", () => {
    expect(partitionDir(["date"], { date: "2025-01-15" })).toBe("date=2025-01-15/")
    expect(partitionDir(["region"], { region: null })).toBe("region=__HIVE_DEFAULT_PARTITION__/")
    expect(partitionDir(["region"], { region: "" })).toBe("region=__HIVE_DEFAULT_PARTITION__/")
    expect(partitionDir(["region"], { region: "a/b=c%" })).toBe("region=a%2Fb%3Dc%25/")
    expect(partitionDir(["a", "b"], { a: "1", b: null })).toBe("a=1/b=__HIVE_DEFAULT_PARTITION__/")
    expect(partitionDir([], {})).toBe("")
    for (const path of ["date=2025-01-15/part-x.parquet", "region=a%2Fb%3Dc%25/part-é x.parquet", "part-root.parquet"]) {
      expect(storagePathOf(logPathOf(path), "/lake")).toBe(path)
    }
    // Ours need no escaping: the orders tables' log paths are their storage paths.
    const orders = streamFilePath("date=2025-01-15/", "orders_raw", 3, 1n, 9n)
    expect(logPathOf(orders)).toBe(orders)
    expect(logPathOf("region=a%2Fb/part-1.parquet")).toBe("region=a%252Fb/part-1.parquet")
  })

  it("recognises our own files at the root of an unpartitioned table and in any partition directory", () => {
    for (const dir of ["", "region=__HIVE_DEFAULT_PARTITION__/", "region=a%2Fb/", "a=1/b=2/"]) {
      for (const path of [streamFilePath(dir, "t.x-1", 0, 0n, 5n), compactedFilePath(dir), rewrittenFilePath(dir)]) {
        expect(path.startsWith(dir) && !path.slice(dir.length).includes("/")).toBe(true)
        expect(isOwnFile(path)).toBe(true)
        expect(isOwnFile(logPathOf(path))).toBe(true)
      }
    }
    expect(isOwnFile("part-00000-1a2b3c4d-c000.snappy.parquet")).toBe(false)
    expect(isOwnFile("region=eu/part-00000-1a2b3c4d-c000.snappy.parquet")).toBe(false)
  })

  it("refuses a date where a partition directory belongs", () => {
    expect(() => streamFilePath("2025-01-15", "t", 0, 0n, 1n)).toThrow(/not a partition directory/)
    expect(() => compactedFilePath("region=eu")).toThrow(/not a partition directory/)
  })
})

describe("a table partitioned by another column, with a null partition", () => {
  it.scoped("writes one file per value under <column>=<value>/, the null one under __HIVE_DEFAULT_PARTITION__, with the value in partitionValues", () =>
    Effect.gen(function*() {
      const storage = yield* freshStorage
      const rows = [row("a", 1, 10, "eu"), row("b", 1, null, null), row("c", 1, 30, "a/b=c"), row("d", 1, 40, "eu"), row("e", 1, 50, "")]
      const { staged } = yield* appendRows(storage, byRegion, rows)
      const adds = staged.map((f) => f.add.add)
      expect(adds.map((a) => [a.path.replace(/part-.*$/, ""), a.partitionValues])).toEqual([
        ["region=eu/", { region: "eu" }],
        ["region=__HIVE_DEFAULT_PARTITION__/", { region: null }],
        ["region=a%252Fb%253Dc/", { region: "a/b=c" }],
        ["region=__HIVE_DEFAULT_PARTITION__/", { region: null }]
      ])
      for (const add of adds) {
        expect(isOwnFile(add.path)).toBe(true)
        expect(yield* storage.read(storagePathOf(add.path, storage.root))).not.toBeNull()
        expect(JSON.parse(add.stats!).numRecords).toBeGreaterThan(0)
      }
      expect(yield* storage.read(storagePathOf(adds[2]!.path, storage.root).replace("%2F", "/"))).toBeNull()
      expect(staged.map((f) => [f.written.date, f.written.rows])).toEqual([["eu", 2], ["__HIVE_DEFAULT_PARTITION__", 1], ["a/b=c", 1], ["__HIVE_DEFAULT_PARTITION__", 1]])
      // "" reads back as null, as Spark writes it.
      expect(yield* sampleRows(storage, byRegion)).toEqual(rows.map((r) => (r.region === "" ? { ...r, region: null } : r)))
    }))

  it.scoped("compacts each partition on its own: the null partition's merge stays under __HIVE_DEFAULT_PARTITION__ with region IS NULL", () =>
    Effect.gen(function*() {
      const storage = yield* freshStorage
      const written: Array<SampleRow> = []
      for (let i = 0; i < 3; i++) {
        const batch = [row(`n${i}`, i, i, null), row(`e${i}`, i, i, "e/u")]
        written.push(...batch)
        yield* appendRows(storage, byRegion, batch)
      }
      const before = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      const done = yield* compactUntilDone(before, settings, 64, byRegion).pipe(Effect.provideService(TableStorage, storage))
      expect(done.merged).toBe(2)
      const files = yield* sampleFiles(storage, byRegion)
      expect([...files].map(([path, f]) => [path.replace(/part-compacted-[0-9a-f-]{36}\.parquet$/, "*"), f.partitionValues, f.rows.map((r) => r.id)]).sort()).toEqual([
        ["region=__HIVE_DEFAULT_PARTITION__/*", { region: null }, ["n0", "n1", "n2"]],
        ["region=e%252Fu/*", { region: "e/u" }, ["e0", "e1", "e2"]]
      ])
      const predicates = [yield* commitInfoOf(storage, before.version + 1), yield* commitInfoOf(storage, before.version + 2)]
        .map((info) => (info["operationParameters"] as Record<string, string>)["predicate"])
      expect(predicates.sort()).toEqual([JSON.stringify(["region = 'e/u'"]), JSON.stringify(["region IS NULL"])])
      expect(yield* sampleRows(storage, byRegion)).toEqual(written.sort((a, b) => (a.id < b.id ? -1 : 1)))
    }))

  it.scoped("rewrites by key across files and partitions: changed rows replaced, deleted rows gone, the old rows returned with their partition", () =>
    Effect.gen(function*() {
      const storage = yield* freshStorage
      yield* appendRows(storage, byRegion, [row("a", 1, 1, "eu"), row("a", 2, 2, "eu"), row("b", 1, 3, null)])
      yield* appendRows(storage, byRegion, [row("c", 1, 4, "eu"), row("d", 1, 5, null), row("d", 2, 6, "us")])
      // A file whose statistics rule every key out is never read: its bytes may be gone.
      const { staged } = yield* appendRows(storage, byRegion, [row("x", 1, 7, "us"), row("y", 1, 8, "us")])
      const untouched = staged[0]!.add.add.path
      const snapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      // (a,2) changes value, (b,1) and (d,2) are deleted, (c,1) moves to another partition; (a,1), (d,1) stay.
      const keys = new Set([sampleKey("a", 2), sampleKey("b", 1), sampleKey("d", 2), sampleKey("c", 1), sampleKey("zz", 9)])
      const found = yield* findRowsByKey(snapshot, byRegion, keys).pipe(Effect.provideService(TableStorage, storage))
      expect(new Map(found)).toEqual(new Map([
        [sampleKey("a", 2), row("a", 2, 2, "eu")],
        [sampleKey("b", 1), row("b", 1, 3, null)],
        [sampleKey("c", 1), row("c", 1, 4, "eu")],
        [sampleKey("d", 2), row("d", 2, 6, "us")]
      ]))
      const kept = yield* storage.read(storagePathOf(untouched, storage.root))
      yield* storage.remove(storagePathOf(untouched, storage.root))
      const rewrite = yield* rewriteWithoutKeys(snapshot, byRegion, keys, Date.now()).pipe(Effect.provideService(TableStorage, storage))
      yield* storage.write(storagePathOf(untouched, storage.root), kept!.bytes)
      expect(rewrite.before).toEqual(found)
      expect(rewrite.dropped).toBe(4)
      expect(rewrite.removed.has(untouched)).toBe(false)
      expect(rewrite.removed.size).toBe(4)
      const adds = rewrite.actions.flatMap((a) => ("add" in a ? [a.add] : []))
      // The two eu files' kept rows go into one file; the null and us files rewritten kept nothing;
      // the null file of (d,1) was read (its statistics admit "d") but holds no key, so it stays.
      expect(adds.map((a) => [a.path.replace(/part-rewritten-[0-9a-f-]{36}\.parquet$/, "*"), a.partitionValues])).toEqual([
        ["region=eu/*", { region: "eu" }]
      ])
      for (const path of rewrite.written) expect(isOwnFile(path)).toBe(true)
      const { staged: replacements } = yield* stageRows(storage, byRegion, [row("a", 2, 20, "eu"), row("c", 1, 40, "us")])
      yield* commitActions(storage, byRegion, [...rewrite.actions, ...replacements.map((f) => f.add)], snapshot)
      expect(yield* sampleRows(storage, byRegion)).toEqual([
        row("a", 1, 1, "eu"),
        row("a", 2, 20, "eu"),
        row("c", 1, 40, "us"),
        row("d", 1, 5, null),
        row("x", 1, 7, "us"),
        row("y", 1, 8, "us")
      ])
    }))
})

describe("an unpartitioned table", () => {
  it.scoped("writes one file at the root with partitionValues {}, compacts there with no predicate, and rewrites there by key", () =>
    Effect.gen(function*() {
      const storage = yield* freshStorage
      const { staged } = yield* appendRows(storage, flat, [row("a", 1, 1, null), row("b", 1, 2, null)])
      expect(staged.map((f) => [f.add.add.path.includes("/"), f.add.add.partitionValues, f.written.rows])).toEqual([[false, {}, 2]])
      yield* appendRows(storage, flat, [row("c", 1, 3, null)])
      yield* appendRows(storage, flat, [row("d", 1, 4, null), row("e", 1, null, null)])
      const before = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      expect(before.files.size).toBe(3)
      const done = yield* compactUntilDone(before, settings, 64, flat).pipe(Effect.provideService(TableStorage, storage))
      expect(done.merged).toBe(1)
      const info = yield* commitInfoOf(storage, before.version + 1)
      expect(info["operation"]).toBe("OPTIMIZE")
      expect((info["operationParameters"] as Record<string, string>)["predicate"]).toBe("[]")
      const compacted = yield* sampleFiles(storage, flat)
      expect([...compacted].map(([path, f]) => [/^part-compacted-[0-9a-f-]{36}\.parquet$/.test(path), f.partitionValues, f.rows.map((r) => r.id)])).toEqual([
        [true, {}, ["a", "b", "c", "d", "e"]]
      ])
      const snapshot = done.snapshot
      const rewrite = yield* rewriteWithoutKeys(snapshot, flat, new Set([sampleKey("b", 1), sampleKey("e", 1)]), Date.now()).pipe(
        Effect.provideService(TableStorage, storage)
      )
      expect([...rewrite.before.keys()].sort()).toEqual([sampleKey("b", 1), sampleKey("e", 1)])
      const adds = rewrite.actions.flatMap((a) => ("add" in a ? [a.add] : []))
      expect(adds.map((a) => [/^part-rewritten-[0-9a-f-]{36}\.parquet$/.test(a.path), a.partitionValues, JSON.parse(a.stats!).numRecords])).toEqual([[true, {}, 3]])
      const { staged: replacement } = yield* stageRows(storage, flat, [row("b", 1, 22, null)])
      yield* commitActions(storage, flat, [...rewrite.actions, ...replacement.map((f) => f.add)], snapshot)
      expect(yield* sampleRows(storage, flat)).toEqual([row("a", 1, 1, null), row("b", 1, 22, null), row("c", 1, 3, null), row("d", 1, 4, null)])
    }))

  it.scoped("a truncate-like rewrite (emptied) reads every file and drops what it says, keeping only changed rows in before", () =>
    Effect.gen(function*() {
      const storage = yield* freshStorage
      yield* appendRows(storage, flat, [row("a", 1, 1, null), row("b", 2, 2, null)])
      yield* appendRows(storage, flat, [row("c", 1, 3, null), row("d", 2, 4, null)])
      const snapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      const evenN = (key: string) => (JSON.parse(key) as [string, number])[1] % 2 === 0
      const rewrite = yield* rewriteWithoutKeys(snapshot, flat, new Set([sampleKey("a", 1)]), Date.now(), evenN).pipe(
        Effect.provideService(TableStorage, storage)
      )
      expect(rewrite.dropped).toBe(3)
      expect([...rewrite.before.keys()]).toEqual([sampleKey("a", 1)])
      yield* commitActions(storage, flat, rewrite.actions, snapshot)
      expect(yield* sampleRows(storage, flat)).toEqual([row("c", 1, 3, null)])
    }))
})
