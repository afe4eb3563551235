/**
 * What every TableStorage must do, as one set of cases: the file layer runs it in the unit project
 * (test/unit/fileTableStorage.test.ts), the S3 layer against a real S3 server in the integration
 * project (test/integration/tableStorageS3.test.ts). Each case gets a fresh, empty location.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { readFileSync } from "node:fs"
import type { Storage } from "./tableCases.ts"

export interface StorageUnderTest {
  readonly name: string
  readonly fresh: Effect.Effect<Storage, unknown, Scope.Scope>
  readonly timeout?: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : decoder.decode(bytes))

export const storageContract = (subject: StorageUnderTest): void => {
  const timeout = subject.timeout
  describe(`table storage contract: ${subject.name}`, () => {
    it.scoped("a missing object reads as null, removes quietly, and has no local path", () =>
      Effect.gen(function*() {
        const storage = yield* subject.fresh
        expect(yield* storage.read("_delta_log/00000000000000000000.json")).toBeNull()
        yield* storage.remove("_delta_log/00000000000000000000.json")
        expect(yield* storage.list("")).toEqual([])
        const error = yield* Effect.flip(storage.localPath("date=2025-01-15/part-missing.parquet"))
        expect(error._tag).toBe("StorageError")
      }), timeout)

    it.scoped("writes and reads back whole objects; a write replaces; localPath holds the bytes", () =>
      Effect.gen(function*() {
        const storage = yield* subject.fresh
        const before = Date.now()
        yield* storage.write("date=2025-01-15/part-a.parquet", encoder.encode("first"))
        const got = yield* storage.read("date=2025-01-15/part-a.parquet")
        expect(text(got?.bytes)).toBe("first")
        // Object stores keep whole seconds; allow for a clock a little apart from the server's.
        expect(Math.abs(got!.modified - before)).toBeLessThan(120_000)
        yield* storage.write("date=2025-01-15/part-a.parquet", encoder.encode("second, longer"))
        expect(text((yield* storage.read("date=2025-01-15/part-a.parquet"))?.bytes)).toBe("second, longer")
        yield* storage.write("date=2025-01-15/part-b.parquet", encoder.encode("immutable data file"))
        const local = yield* storage.localPath("date=2025-01-15/part-b.parquet")
        expect(readFileSync(local, "utf8")).toBe("immutable data file")
        expect(yield* storage.localPath("date=2025-01-15/part-b.parquet")).toBe(local)
        expect(storage.locate("date=2025-01-15/part-b.parquet").endsWith("date=2025-01-15/part-b.parquet")).toBe(true)
      }), timeout)

    it.scoped("lists by prefix with paths relative to the root, across pages", () =>
      Effect.gen(function*() {
        const storage = yield* subject.fresh
        const many = Array.from({ length: 25 }, (_, i) => `_delta_log/${String(i).padStart(20, "0")}.json`)
        yield* Effect.forEach(many, (path) => storage.write(path, encoder.encode(path)), { concurrency: 8 })
        yield* storage.write("date=2025-01-15/part-1.parquet", encoder.encode("12345"))
        yield* storage.write("date=2025-01-16/part-1.parquet", encoder.encode("1"))
        yield* storage.write("_delta_log_other/x.json", encoder.encode("x"))
        const log = yield* storage.list("_delta_log/")
        expect(log.map((o) => o.path).sort()).toEqual(many)
        expect((yield* storage.list("date=2025-01-15/")).map((o) => [o.path, o.size])).toEqual([["date=2025-01-15/part-1.parquet", 5]])
        expect((yield* storage.list("date=")).map((o) => o.path).sort()).toEqual(["date=2025-01-15/part-1.parquet", "date=2025-01-16/part-1.parquet"])
        expect(yield* storage.list("")).toHaveLength(28)
        expect(yield* storage.list("_delta_log")).toHaveLength(26)
      }), timeout)

    it.scoped("put-if-absent: true once, then false with the object left as it was", () =>
      Effect.gen(function*() {
        const storage = yield* subject.fresh
        expect(yield* storage.writeIfAbsent("_delta_log/00000000000000000000.json", encoder.encode("mine"))).toBe(true)
        expect(yield* storage.writeIfAbsent("_delta_log/00000000000000000000.json", encoder.encode("theirs"))).toBe(false)
        expect(text((yield* storage.read("_delta_log/00000000000000000000.json"))?.bytes)).toBe("mine")
      }), timeout)

    it.scoped("put-if-absent: of 16 racing writers exactly one wins each of 20 rounds, and its bytes are what is stored", () =>
      Effect.gen(function*() {
        const storage = yield* subject.fresh
        const started = Date.now()
        for (let round = 0; round < 20; round++) {
          const path = `_delta_log/${String(round).padStart(20, "0")}.json`
          const results = yield* Effect.all(
            Array.from({ length: 16 }, (_, writer) => storage.writeIfAbsent(path, encoder.encode(`writer ${writer}\n`.repeat(200)))),
            { concurrency: "unbounded" }
          )
          expect(results.filter(Boolean)).toHaveLength(1)
          expect(text((yield* storage.read(path))?.bytes)).toBe(`writer ${results.indexOf(true)}\n`.repeat(200))
        }
        expect(yield* storage.list("_delta_log/")).toHaveLength(20)
        console.info(`[contract ${subject.name}] 20 rounds x 16 writers of put-if-absent: ${Date.now() - started} ms`)
      }), timeout)

    it.scoped("remove deletes the object and only it", () =>
      Effect.gen(function*() {
        const storage = yield* subject.fresh
        yield* storage.write("date=2025-01-15/part-a.parquet", encoder.encode("a"))
        yield* storage.write("date=2025-01-15/part-b.parquet", encoder.encode("b"))
        yield* storage.remove("date=2025-01-15/part-a.parquet")
        yield* storage.remove("date=2025-01-15/part-a.parquet")
        expect(yield* storage.read("date=2025-01-15/part-a.parquet")).toBeNull()
        expect((yield* storage.list("")).map((o) => o.path)).toEqual(["date=2025-01-15/part-b.parquet"])
      }), timeout)
  })
}
