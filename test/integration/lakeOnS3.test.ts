/**
 * The pipeline end to end with the lake on the run's real S3 server (S3Proxy, MinIO or the env's):
 * producer and consumer as processes (`--once`), the table at `s3://bucket/<unique>/output/orders`
 * through the AWS_* variables a user sets, then read back by two engines no one here wrote: DuckDB
 * over our snapshot's exact file list, and Spark (delta-spark through the S3A connector), each with
 * PostgreSQL's count, sum and per-date counts, and the contract's types.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { Effect } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { ordersViewSql, readLakeVersion } from "../../src/analytics/lakeQuery.ts"
import { parseS3Location } from "../../src/layers/storage/s3Location.ts"
import { tableStorageFor } from "../../src/layers/storage/tableStorageFor.ts"
import { describeS3 } from "../support/endpoints.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { s3SettingsOf, uniqueTableUrl } from "../support/s3Storage.ts"
import { type SparkSession, startSpark } from "../support/spark.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeS3("pipeline with the lake on S3", (s3, endpoints) => {
  const lake = `${uniqueTableUrl(s3, "e2e")}/output/orders`
  const cacheDir = mkdtempSync(join(tmpdir(), "fop-s3-e2e-cache-"))
  const storage = () => tableStorageFor(lake, s3SettingsOf(s3, { cacheDir }))
  let pipeline: TestPipeline
  let spark: SparkSession | undefined

  beforeAll(async () => {
    pipeline = await makeTestPipeline(endpoints, "s3e2e", {
      extra: {
        DATALAKE_PATH: lake,
        // What a user of MinIO or S3Proxy sets (README: "Lake on S3-compatible storage").
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
        // Several batches and files per partition; every commit is a conditional PUT on the server.
        PRODUCER_BATCH_SIZE: "400",
        CONSUMER_MAX_BATCH_MESSAGES: "500"
      }
    })
  })

  afterAll(async () => {
    await spark?.close()
    await pipeline?.close()
    rmSync(cacheDir, { recursive: true, force: true })
  })

  const source = async () => {
    const { rows: [totals] } = await pipeline.pool.query<{ rows: number; sum: string }>(
      `SELECT count(*)::int AS rows, sum(amount)::text AS sum FROM "${pipeline.table}"`
    )
    const { rows: perDate } = await pipeline.pool.query<{ date: string; n: number }>(
      `SELECT to_char(created_at, 'YYYY-MM-DD') AS date, count(*)::int AS n FROM "${pipeline.table}" GROUP BY 1 ORDER BY 1`
    )
    return { rows: totals!.rows, sum: totals!.sum, perDate: Object.fromEntries(perDate.map((r) => [r.date, r.n])) }
  }

  /** DuckDB over exactly the files the table's current version names (copied from S3 to a local cache). */
  const duckdb = async () => {
    const version = await Effect.runPromise(readLakeVersion(lake, {}, storage()))
    const instance = await DuckDBInstance.create(":memory:")
    const db = await instance.connect()
    try {
      await db.run(ordersViewSql(version.files))
      const totals = (await db.runAndReadAll(
        "SELECT count(*)::INT, count(DISTINCT order_id)::INT, sum(amount)::VARCHAR FROM orders"
      )).getRows()[0]!
      const perDate = (await db.runAndReadAll("SELECT strftime(date, '%Y-%m-%d'), count(*)::INT FROM orders GROUP BY 1 ORDER BY 1")).getRows()
      const types = (await db.runAndReadAll("SELECT column_name, column_type FROM (DESCRIBE orders)")).getRows()
      return {
        version: version.version,
        files: version.files.length,
        rows: Number(totals[0]),
        distinct: Number(totals[1]),
        sum: String(totals[2]),
        perDate: Object.fromEntries(perDate.map(([d, n]) => [String(d), Number(n)])),
        types: Object.fromEntries(types.map(([c, t]) => [String(c), String(t)]))
      }
    } finally {
      db.closeSync()
      instance.closeSync()
    }
  }

  it("writes the table on S3 that DuckDB and Spark read exactly as PostgreSQL holds it", async () => {
    // Two rounds: the second commits after the first's versions, as a restarted consumer does.
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1, 1500, "2025-01-14 22:00:00", 41))
    pipeline.ok(await pipeline.run("producer"))
    pipeline.ok(await pipeline.run("consumer"))
    await pipeline.pool.query(insertOrdersSql(pipeline.table, 1501, 1000, "2025-01-16 10:00:00", 17))
    pipeline.ok(await pipeline.run("producer"))
    const consumer = pipeline.ok(await pipeline.run("consumer"))
    expect(consumer.stdout).toContain("lake on S3")
    expect(consumer.stdout, "the secret never reaches a log line").not.toContain(s3.secretAccessKey)

    const expected = await source()
    expect(expected.rows).toBe(2500)
    expect(Object.keys(expected.perDate).length).toBeGreaterThanOrEqual(3)

    const duck = await duckdb()
    expect(duck).toMatchObject({ rows: expected.rows, distinct: expected.rows, sum: expected.sum, perDate: expected.perDate })
    expect(duck.files).toBeGreaterThan(1)
    expect(duck.types).toMatchObject({
      order_id: "BIGINT",
      customer_name: "VARCHAR",
      amount: "DECIMAL(10,2)",
      order_status: "VARCHAR",
      created_at: "TIMESTAMP WITH TIME ZONE",
      date: "DATE"
    })

    // Spark reads the same table over S3A, from the server, not from our cache.
    const { bucket, prefix } = parseS3Location(lake)
    spark = await startSpark({ s3: { endpoint: s3.endpoint, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region } })
    const table = `delta.\`s3a://${bucket}/${prefix}\``
    const totals = await spark.sql(`SELECT count(*), count(DISTINCT order_id), CAST(sum(amount) AS STRING) FROM ${table}`)
    expect(totals.rows[0]!.map(String)).toEqual([String(expected.rows), String(expected.rows), expected.sum])
    const perDate = await spark.sql(`SELECT CAST(date AS STRING), count(*) FROM ${table} GROUP BY date ORDER BY date`)
    expect(Object.fromEntries(perDate.rows.map(([d, n]) => [String(d), Number(n)]))).toEqual(expected.perDate)
    const types = await spark.sql(`DESCRIBE TABLE ${table}`)
    const typeOf = Object.fromEntries(types.rows.filter(([c]) => typeof c === "string" && !String(c).startsWith("#")).map(([c, t]) => [String(c), String(t)]))
    expect(typeOf).toMatchObject({
      order_id: "bigint",
      customer_name: "string",
      amount: "decimal(10,2)",
      order_status: "string",
      created_at: "timestamp",
      date: "date"
    })
    const history = await spark.sql(`DESCRIBE HISTORY ${table} LIMIT 1`)
    expect(Number(history.rows[0]![history.columns.indexOf("version")])).toBe(duck.version)
  }, 300_000)
})
