/**
 * The lake on an https S3 endpoint: an S3Proxy of the suite's jar serving TLS with a certificate from
 * a CA made here. The consumer trusts that CA through AWS_CA_BUNDLE and takes its keys from
 * AWS_ACCESS_KEY_ID_FILE / AWS_SECRET_ACCESS_KEY_FILE; the table it writes is read back over the same
 * endpoint by DuckDB. Without the CA it stops at start naming AWS_CA_BUNDLE, writing nothing and
 * never printing the secret key.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { Effect } from "effect"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { ordersViewSql, readLakeVersion } from "../../src/analytics/lakeQuery.ts"
import { s3SettingsFromEnv } from "../../src/layers/storage/s3TableStorage.ts"
import { tableStorageFor } from "../../src/layers/storage/tableStorageFor.ts"
import { type LocalS3, startLocalS3 } from "../../scripts/stack/s3Server.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { makeTestCertificates, type TestCertificates } from "../support/testCertificates.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("the lake on an https S3 endpoint", (endpoints) => {
  let s3: LocalS3
  let certs: TestCertificates
  let dir: string
  const pipelines: Array<TestPipeline> = []

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fop-s3-tls-"))
    mkdirSync(join(dir, "certs"))
    certs = makeTestCertificates(join(dir, "certs"), ["localhost"])
    s3 = await startLocalS3({
      accessKeyId: "tls-lake-key",
      secretAccessKey: "tls-lake-Secret-7",
      tls: { port: 0, host: "localhost", keystore: certs.serverPkcs12, keystorePassword: "changeit" }
    })
  }, 120_000)

  afterAll(async () => {
    for (const pipeline of pipelines) await pipeline.close().catch(() => undefined)
    await s3?.stop()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it("writes the table through TLS with keys from files, and refuses an endpoint whose CA it was not given", async () => {
    writeFileSync(join(dir, "key-id"), `${s3.accessKeyId}\n`)
    writeFileSync(join(dir, "secret"), `${s3.secretAccessKey}\n`)
    const lake = `s3://${s3.bucket}/tls-${Date.now().toString(36)}/output/orders`
    const env = {
      DATALAKE_PATH: lake,
      AWS_ENDPOINT_URL_S3: s3.secureEndpoint!,
      AWS_REGION: s3.region,
      AWS_ACCESS_KEY_ID_FILE: join(dir, "key-id"),
      AWS_SECRET_ACCESS_KEY_FILE: join(dir, "secret")
    }
    const pipeline = await makeTestPipeline(endpoints, "s3tls", { extra: env })
    pipelines.push(pipeline)
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 250, "2026-05-01T09:00:00Z", 90))
    pipeline.ok(await pipeline.run("producer"))

    const untrusted = await pipeline.run("consumer")
    expect(untrusted.code).not.toBe(0)
    expect(untrusted.stdout + untrusted.stderr).toContain("set AWS_CA_BUNDLE")
    expect(untrusted.stdout + untrusted.stderr).not.toContain(s3.secretAccessKey)
    expect(untrusted.ms).toBeLessThan(60_000)

    pipeline.ok(await pipeline.run("consumer", { AWS_CA_BUNDLE: certs.ca }))
    const settings = { ...s3SettingsFromEnv({ ...env, AWS_CA_BUNDLE: certs.ca }), cacheDir: join(dir, "cache") }
    const version = await Effect.runPromise(readLakeVersion(lake, {}, tableStorageFor(lake, settings)))
    const instance = await DuckDBInstance.create(":memory:")
    const db = await instance.connect()
    try {
      await db.run(ordersViewSql(version.files))
      const [row] = (await db.runAndReadAll("SELECT count(*)::INT, count(DISTINCT order_id)::INT FROM orders")).getRows()
      expect(row).toEqual([250, 250])
    } finally {
      db.closeSync()
    }
  }, 240_000)
})
