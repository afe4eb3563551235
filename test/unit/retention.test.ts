/**
 * Cleanup keeps what the table's own retention properties, or our configuration, want kept,
 * whichever is longer; a file another engine wrote and has not committed yet is kept for days; a
 * configured retention too short to be safe is refused at start.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { loadConfig } from "../../src/config/loadConfig.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { streamFilePath } from "../../src/table/dataPaths.ts"
import { vacuumTable } from "../../src/table/maintenance.ts"
import { openTable } from "../../src/table/openTable.ts"
import { ordersFileBytes } from "../../src/table/ordersFile.ts"
import { parseInterval, retentionOf } from "../../src/table/retention.ts"
import type { Snapshot } from "../../src/table/snapshot.ts"
import { order } from "./fixtures.ts"

describe("the table's retention", () => {
  it("reads Delta's interval properties as Spark writes them", () => {
    expect(parseInterval("interval 7 days")).toBe(7 * 86_400_000)
    expect(parseInterval("interval 1 week")).toBe(604_800_000)
    expect(parseInterval("interval 60 minutes")).toBe(3_600_000)
    expect(parseInterval("INTERVAL 2 hours 30 minutes")).toBe(9_000_000)
    expect(parseInterval("30 days")).toBe(30 * 86_400_000)
    expect(parseInterval("interval 1 month")).toBeUndefined()
    expect(parseInterval("a week")).toBeUndefined()
    expect(parseInterval("interval")).toBeUndefined()
  })

  const withProperties = (configuration: Record<string, string>) =>
    ({ metadata: { configuration } } as unknown as Snapshot)

  it("takes the longer of the table's properties and the configured retention", () => {
    const hour = 3_600_000
    expect(retentionOf(withProperties({}), hour)).toEqual({ logMs: hour, deletedFileMs: hour })
    expect(retentionOf(withProperties({ "delta.logRetentionDuration": "interval 30 days", "delta.deletedFileRetentionDuration": "interval 1 week" }), hour))
      .toEqual({ logMs: 30 * 86_400_000, deletedFileMs: 604_800_000 })
    expect(retentionOf(withProperties({ "delta.deletedFileRetentionDuration": "interval 10 minutes" }), hour)).toEqual({ logMs: hour, deletedFileMs: hour })
    expect(() => retentionOf(withProperties({ "delta.logRetentionDuration": "forever" }), hour)).toThrow(/delta.logRetentionDuration/)
  })

  const tableWith = (configuration: Record<string, string>) =>
    Effect.gen(function*() {
      const objects = yield* makeMemoryObjects
      const storage = Context.get(yield* Layer.build(memoryTableStorage(objects)), TableStorage)
      const snapshot = yield* openTable({ configuration, legacy: { topic: "t", checkpoint: Effect.succeed(undefined) } }).pipe(
        Effect.provideService(TableStorage, storage)
      )
      // A crash leftover of ours, written just now: "old" only for a retention in the past.
      const orphan = streamFilePath("date=2025-01-15/", "t", 0, 0n, 1n)
      yield* storage.write(orphan, ordersFileBytes([order(1, "2025-01-15T10:00:00Z")]))
      return { storage, snapshot, orphan }
    })

  it.scoped("vacuum keeps files the table's deletedFileRetentionDuration keeps, though the configured retention has passed", () =>
    Effect.gen(function*() {
      const kept = yield* tableWith({ "delta.deletedFileRetentionDuration": "interval 7 days" })
      // A configured retention of -1 minute: everything written so far is past it.
      const swept = yield* vacuumTable(kept.snapshot, -60_000).pipe(Effect.provideService(TableStorage, kept.storage))
      expect(swept.removed).toBe(0)
      expect(yield* kept.storage.read(kept.orphan)).not.toBeNull()
      const plain = yield* tableWith({})
      expect((yield* vacuumTable(plain.snapshot, -60_000).pipe(Effect.provideService(TableStorage, plain.storage))).removed).toBe(1)
    }))

  it.scoped("a retention property that is not an interval stops cleanup, naming it", () =>
    Effect.gen(function*() {
      const bad = yield* tableWith({ "delta.deletedFileRetentionDuration": "one week" })
      const error = yield* vacuumTable(bad.snapshot, -60_000).pipe(Effect.provideService(TableStorage, bad.storage), Effect.flip)
      expect(error.message).toContain("delta.deletedFileRetentionDuration")
      expect(yield* bad.storage.read(bad.orphan)).not.toBeNull()
    }))
})

describe("table.retention_minutes", () => {
  const load = (env: Record<string, string>) => loadConfig("configs/orders_stream.yml", env).pipe(Effect.either, Effect.provide(NodeContext.layer))

  it.effect("below the safe minimum is refused, naming the key and the way to allow it", () =>
    Effect.gen(function*() {
      const result = yield* load({ TABLE_RETENTION_MINUTES: "2" })
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.message).toContain("table.retention_minutes from TABLE_RETENTION_MINUTES (environment)")
        expect(result.left.message).toContain("at least 10 minutes")
        expect(result.left.message).toContain("table.allow_short_retention")
      }
      const allowed = yield* load({ TABLE_RETENTION_MINUTES: "2", TABLE_ALLOW_SHORT_RETENTION: "true" })
      expect(Either.isRight(allowed) && allowed.right.table.retention_minutes).toBe(2)
      const fine = yield* load({ TABLE_RETENTION_MINUTES: "10" })
      expect(Either.isRight(fine)).toBe(true)
    }))

  it.effect("in a YAML file written for it too", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fop-retention-"))
      const file = Path.join(dir, "orders_stream.yml")
      Fs.writeFileSync(file, Fs.readFileSync("configs/orders_stream.yml", "utf8") + "\ntable:\n  retention_minutes: 1\n")
      const result = yield* loadConfig(file, {}).pipe(Effect.either, Effect.provide(NodeContext.layer))
      Fs.rmSync(dir, { recursive: true, force: true })
      expect(Either.isLeft(result) && result.left.message).toContain(`${file}: table.retention_minutes: Expected at least 10 minutes`)
    }))
})
