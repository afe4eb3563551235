import { Context, Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type S3Settings, s3TableStorage } from "../../src/layers/storage/s3TableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import type { S3Endpoints } from "./endpointsContext.ts"

/** Settings for the run's S3 server: its keys, never the machine's AWS environment. */
export const s3SettingsOf = (s3: S3Endpoints, overrides: Partial<S3Settings> = {}): S3Settings => ({
  endpoint: s3.endpoint,
  region: s3.region,
  forcePathStyle: true,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  ...overrides
})

/** A unique prefix in the shared bucket, so files and reruns never see each other's objects. */
export const uniqueTableUrl = (s3: S3Endpoints, label: string): string =>
  `s3://${s3.bucket}/tests/${label}-${Date.now()}-${randomBytes(4).toString("hex")}`

/**
 * A fresh S3 table location for one test, its localPath cache in a temporary directory; the
 * objects are left in the test bucket (the server is thrown away, or it is a developer's stack).
 */
export const freshS3Storage = (s3: S3Endpoints, label: string, overrides: Partial<S3Settings> = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "fop-lake-cache-"))),
    (cacheDir) => Effect.sync(() => rmSync(cacheDir, { recursive: true, force: true }))
  ).pipe(
    Effect.flatMap((cacheDir) => Layer.build(s3TableStorage(uniqueTableUrl(s3, label), s3SettingsOf(s3, { cacheDir, ...overrides })))),
    Effect.map((context) => Context.get(context, TableStorage))
  )
