import { expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { findFreePorts } from "../../scripts/stack/ports.ts"
import { s3TableStorage } from "../../src/layers/storage/s3TableStorage.ts"
import { tableStorageFor } from "../../src/layers/storage/tableStorageFor.ts"
import { isPermanentStorageError, StorageError } from "../../src/services/errors.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { describeS3 } from "../support/endpoints.ts"
import { freshS3Storage, s3SettingsOf, uniqueTableUrl } from "../support/s3Storage.ts"
import { storageContract } from "../support/storageContract.ts"

const MiB = 1024 * 1024

/** Building the layer runs the start-up probe; its failure is what the program would stop with. */
const buildFailure = (layer: Layer.Layer<TableStorage, StorageError>) =>
  Layer.build(layer).pipe(Effect.scoped, Effect.flip)

describeS3("table storage on S3", (s3) => {
  // A small page size makes the 28-object listing take several ListObjectsV2 pages.
  storageContract({ name: "s3", fresh: freshS3Storage(s3, "contract", { pageSize: 7 }), timeout: 60_000 })

  it.scoped("lists more than 1000 keys (S3's page) with the default page size", () =>
    Effect.gen(function*() {
      const storage = yield* freshS3Storage(s3, "many")
      const started = Date.now()
      yield* Effect.forEach(Array.from({ length: 1001 }, (_, i) => i), (i) =>
        storage.write(`_delta_log/${String(i).padStart(20, "0")}.json`, new Uint8Array([i % 256])), { concurrency: 16 })
      const wrote = Date.now() - started
      const listed = yield* storage.list("_delta_log/")
      expect(listed).toHaveLength(1001)
      expect(new Set(listed.map((o) => o.path)).size).toBe(1001)
      console.info(`[s3] 1001 puts (16 at a time) in ${wrote} ms; listed in ${Date.now() - started - wrote} ms`)
    }), 120_000)

  it.scoped("a multipart write reads back identical, and multipart put-if-absent respects an existing object", () =>
    Effect.gen(function*() {
      const storage = yield* freshS3Storage(s3, "multipart", { multipartThreshold: 6 * MiB, partSize: 5 * MiB })
      const bytes = new Uint8Array(randomBytes(23 * MiB))
      const started = Date.now()
      yield* storage.write("date=2025-01-15/part-big.parquet", bytes)
      const wrote = Date.now() - started
      const back = yield* storage.read("date=2025-01-15/part-big.parquet")
      expect(back!.bytes.byteLength).toBe(bytes.byteLength)
      expect(Buffer.from(back!.bytes).equals(Buffer.from(bytes))).toBe(true)
      expect((yield* storage.list("date=")).map((o) => o.size)).toEqual([23 * MiB])
      expect(yield* storage.writeIfAbsent("date=2025-01-15/part-big.parquet", bytes.subarray(0, 7 * MiB))).toBe(false)
      expect((yield* storage.read("date=2025-01-15/part-big.parquet"))!.bytes.byteLength).toBe(23 * MiB)
      expect(yield* storage.writeIfAbsent("_delta_log/00000000000000000010.checkpoint.parquet", bytes.subarray(0, 7 * MiB))).toBe(true)
      console.info(`[s3] 23 MiB in 5 parts of 5 MiB written in ${wrote} ms`)
    }), 120_000)

  it.effect("a missing bucket stops at start with a permanent error naming the bucket and how to create it", () =>
    Effect.gen(function*() {
      const bucket = `no-such-bucket-${randomBytes(4).toString("hex")}`
      const error = yield* buildFailure(s3TableStorage(`s3://${bucket}/orders`, s3SettingsOf(s3)))
      expect(error.reason).toBe("no-bucket")
      expect(isPermanentStorageError(error)).toBe(true)
      expect(error.message).toContain(bucket)
      expect(error.message).toContain(`mb s3://${bucket}`)
    }))

  it.effect("a wrong secret stops at start with a permanent credentials error that names the key, not the secret", () =>
    Effect.gen(function*() {
      const secret = "definitely-the-wrong-secret"
      const error = yield* buildFailure(s3TableStorage(
        uniqueTableUrl(s3, "secret"),
        s3SettingsOf(s3, { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: secret } })
      ))
      expect(isPermanentStorageError(error)).toBe(true)
      expect(error.reason).toBe("bad-credentials")
      expect(error.message).toContain("SignatureDoesNotMatch")
      expect(error.message).toContain(s3.accessKeyId.slice(0, 4))
      expect(error.message).not.toContain(secret)
    }))

  // Live clock: the probe's backoff really waits.
  it.live("an unreachable endpoint is transient: waited for, then reported with the endpoint", () =>
    Effect.gen(function*() {
      const [port] = yield* Effect.promise(() => findFreePorts(1))
      const endpoint = `http://127.0.0.1:${port}`
      const started = Date.now()
      const error = yield* buildFailure(s3TableStorage(uniqueTableUrl(s3, "unreachable"), s3SettingsOf(s3, { endpoint, startupWait: "2 seconds" })))
      expect(error.reason).toBe("unreachable")
      expect(isPermanentStorageError(error)).toBe(false)
      expect(error.message).toContain(endpoint)
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500)
    }), 60_000)

  it.effect("tableStorageFor: s3:// and s3a:// are object stores, anything else a directory", () =>
    Effect.gen(function*() {
      const url = uniqueTableUrl(s3, "for")
      const settings = s3SettingsOf(s3)
      const root = (path: string) => TableStorage.pipe(Effect.map((t) => t.root), Effect.provide(tableStorageFor(path, settings)))
      expect(yield* root(url)).toBe(url)
      expect(yield* root(url.replace("s3://", "s3a://"))).toBe(url)
      expect(yield* root("/tmp/lake/output/orders")).toBe("/tmp/lake/output/orders")
    }))
})
