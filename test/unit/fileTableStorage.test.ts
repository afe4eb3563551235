import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { storageContract } from "../support/storageContract.ts"

// The same contract runs over S3 in test/integration/tableStorageS3.test.ts.
storageContract({
  name: "file",
  fresh: Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "fop-storage-"))),
    (root) => Effect.sync(() => rmSync(root, { recursive: true, force: true }))
  ).pipe(
    Effect.flatMap((root) => Layer.build(fileTableStorage(root))),
    Effect.map((context) => Context.get(context, TableStorage))
  )
})

storageContract({
  name: "memory",
  fresh: makeMemoryObjects.pipe(
    Effect.flatMap((objects) => Layer.build(memoryTableStorage(objects))),
    Effect.map((context) => Context.get(context, TableStorage))
  )
})

const encoder = new TextEncoder()

describe("file table storage", () => {
  it.effect("put-if-absent: of racing writers exactly one wins, its bytes whole, no temporary left", () => {
    const root = mkdtempSync(join(tmpdir(), "fop-storage-"))
    return Effect.gen(function*() {
      const storage = yield* TableStorage
      for (let round = 0; round < 20; round++) {
        const path = `_delta_log/${String(round).padStart(20, "0")}.json`
        const results = yield* Effect.all(
          Array.from({ length: 8 }, (_, writer) => storage.writeIfAbsent(path, encoder.encode(`writer ${writer}\n`.repeat(1000)))),
          { concurrency: "unbounded" }
        )
        expect(results.filter(Boolean)).toHaveLength(1)
        expect(readFileSync(join(root, path), "utf8")).toBe(`writer ${results.indexOf(true)}\n`.repeat(1000))
      }
      expect(readdirSync(join(root, "_delta_log")).filter((n) => n.endsWith(".tmp"))).toEqual([])
      expect(yield* storage.list("_delta_log/")).toHaveLength(20)
      expect(yield* storage.read("_delta_log/missing.json")).toBeNull()
    }).pipe(
      Effect.provide(fileTableStorage(root)),
      Effect.ensuring(Effect.sync(() => rmSync(root, { recursive: true, force: true })))
    )
  })
})
