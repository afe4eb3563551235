/**
 * The day-to-day commands as a user runs them: config:check, generate, query and lake:stats.
 */
import { execFile } from "node:child_process"
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import pg from "pg"
import { afterAll, describe, expect, it, onTestFinished } from "vitest"
import { programArgs, type ProgramName } from "../../scripts/programs.ts"
import { repoRoot } from "../../scripts/stack/paths.ts"
import { ordersTableDdl } from "../../scripts/stack/sql.ts"
import { parseIsoMicros } from "../../src/domain/Timestamp.ts"
import type { Cents } from "../../src/domain/Amount.ts"
import { deltaLake } from "../../src/layers/lake/deltaLake.ts"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { Lake } from "../../src/services/Lake.ts"
import { memoryTableSettings } from "../support/memoryTable.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { uniqueName } from "../support/names.ts"

/** The environment without configuration overrides, so each test sees only its own. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) =>
    !/^(POSTGRES|KAFKA|DATALAKE|STREAMING|PRODUCER|CONSUMER|OBSERVABILITY)_/.test(key) && key !== "PG_URL"
  )
)

const run = (bin: ProgramName, args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [...programArgs(bin), ...args], {
      cwd: repoRoot,
      env: { ...baseEnv, ...env },
      timeout: 60_000
    }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }))
  })

describe("config:check", () => {
  it("prints the resolved configuration with the password redacted", async () => {
    const result = await run("configCheck", [], { POSTGRES_PASSWORD: "s3cret-value", KAFKA_BROKERS: "b1:9092,b2:9092" })
    expect(result.code).toBe(0)
    expect(result.stdout).toContain("configs/orders_stream.yml: valid")
    expect(result.stdout).toMatch(/postgres\.password\s+<redacted>/)
    expect(result.stdout).toMatch(/kafka\.brokers\s+b1:9092,b2:9092 {2}\(from KAFKA_BROKERS\)/)
    expect(result.stdout).toMatch(/kafka\.dlq_topic\s+2025em1100506_food_orders_dlq/)
    expect(result.stdout + result.stderr).not.toContain("s3cret-value")
  })

  it.each([
    ["a missing key", { file: "postgres:\n  host: x\n" }, {}, /postgres\.jdbc_url: is missing/],
    ["a wrong type", {}, { STREAMING_BATCH_INTERVAL: "often" }, /streaming\.batch_interval from STREAMING_BATCH_INTERVAL/],
    ["an unsafe table name", {}, { POSTGRES_TABLE: "orders\"; --" }, /postgres\.table .*plain identifier/],
    ["an unknown format", {}, { DATALAKE_FORMAT: "orc" }, /datalake\.format/],
    ["a bad broker list", {}, { KAFKA_BROKERS: "kafka" }, /kafka\.brokers .*host:port/],
    ["a missing file", { path: "/nonexistent/orders_stream.yml" }, {}, /\/nonexistent\/orders_stream\.yml: \(file\): cannot read/]
  ])("exits 1 naming the key for %s", async (_name, fileSpec: { file?: string; path?: string }, env: Record<string, string>, expected) => {
    let config = "configs/orders_stream.yml"
    if (fileSpec.file !== undefined) {
      const dir = mkdtempSync(join(tmpdir(), "fop-cfg-"))
      config = join(dir, "bad.yml")
      writeFileSync(config, fileSpec.file)
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    }
    if (fileSpec.path !== undefined) config = fileSpec.path
    const result = await run("configCheck", ["--config", config], env)
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(expected)
    expect(result.stderr).toContain(config)
  })
})

describe("query and lake:stats", () => {
  const lake = mkdtempSync(join(tmpdir(), "fop-lake-"))
  afterAll(() => rmSync(lake, { recursive: true, force: true }))

  it("query sees the orders view and lake:stats totals the partitions", async () => {
    const order = (id: number, at: string, cents: number, restaurant: string) => ({
      order_id: id, customer_name: "C", restaurant_name: restaurant, item: "I",
      amount: cents as Cents, order_status: "PLACED", created_at: parseIsoMicros(at)!
    })
    // Two versions through the real table code, then a file no version names (a crash leftover).
    const [first, second] = await Effect.runPromise(Effect.gen(function*() {
      const writer = yield* Lake
      const first = yield* writer.commitBatch([{
        topic: "t", partition: 0, from: 0n, firstOffset: 0n, lastOffset: 1n,
        position: { nextOffset: 2n, lastCaptureKey: null, lastChangeKey: null },
        ordersByDate: new Map([["2025-01-01", [order(1, "2025-01-01T10:00:00Z", 1999, "A"), order(2, "2025-01-01T11:00:00Z", 1, "B")]]])
      }])
      const second = yield* writer.commitBatch([{
        topic: "t", partition: 0, from: 2n, firstOffset: 2n, lastOffset: 2n,
        position: { nextOffset: 3n, lastCaptureKey: null, lastChangeKey: null },
        ordersByDate: new Map([["2025-01-02", [order(3, "2025-01-02T09:30:00Z", 50000, "A")]]])
      }])
      return [first.version, second.version] as const
    }).pipe(Effect.provide(deltaLake(memoryTableSettings).pipe(Layer.provide(fileTableStorage(lake)))), Effect.scoped))
    const partition = join(lake, "date=2025-01-01")
    copyFileSync(join(partition, readdirSync(partition).find((f) => f.endsWith(".parquet"))!), join(partition, "part-leftover.parquet"))
    const env = { DATALAKE_PATH: lake }
    const query = await run("query", ["--json", "SELECT restaurant_name, sum(amount) AS revenue, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1"], env)
    expect(query.code, query.stderr).toBe(0)
    expect(JSON.parse(query.stdout)).toEqual([
      { restaurant_name: "A", revenue: "519.99", n: "2" },
      { restaurant_name: "B", revenue: "0.01", n: "1" }
    ])
    const table = await run("query", ["SELECT date, count(*) AS n FROM orders GROUP BY date ORDER BY date"], env)
    expect(table.stdout).toMatch(/2025-01-01 \| 2\n2025-01-02 \| 1\n\(2 rows\)/)
    const bad = await run("query", ["SELECT nope FROM orders"], env)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("nope")

    const older = await run("query", ["--json", "--version", String(first), "SELECT count(*) AS n FROM orders"], env)
    expect(older.code, older.stderr).toBe(0)
    expect(JSON.parse(older.stdout)).toEqual([{ n: "2" }])
    const latest = await run("query", ["--json", "--as-of", new Date(Date.now() + 60_000).toISOString(), "SELECT count(*) AS n FROM orders"], env)
    expect(JSON.parse(latest.stdout)).toEqual([{ n: "3" }])
    const badVersion = await run("query", ["--version", "two", "SELECT 1"], env)
    expect(badVersion.code).toBe(2)
    expect(badVersion.stderr).toContain(`--version: expected a table version (a whole number, 0 or more), got "two"`)
    const badTime = await run("query", ["--as-of", "last tuesday", "SELECT 1"], env)
    expect(badTime.code).toBe(2)
    expect(badTime.stderr).toContain("--as-of: expected an ISO 8601 time")
    const future = await run("query", ["--version", "99", "SELECT 1"], env)
    expect(future.code).toBe(1)
    expect(future.stderr).toContain("version 99 does not exist")

    const stats = await run("lakeStats", [], env)
    expect(stats.code, stats.stderr).toBe(0)
    expect(stats.stdout).toMatch(/2025-01-01\s+\| 1\s+\| 2\s+\|/)
    expect(stats.stdout).toMatch(/2025-01-02\s+\| 1\s+\| 1\s+\|/)
    expect(stats.stdout).toMatch(/\(total\)\s+\| 2\s+\| 3\s+\| \d+\s+\| 2025-01-01 10:00:00\+00\s+\| 2025-01-02 09:30:00\+00/)
    expect(stats.stdout).toContain(`Table version: ${second}`)
    const oldStats = await run("lakeStats", ["--version", String(first)], env)
    expect(oldStats.stdout).toMatch(/\(total\)\s+\| 1\s+\| 2\s+\|/)
  })
})

describeIntegration("generate", (endpoints) => {
  const table = `${uniqueName("gen")}_orders`
  const pool = new pg.Pool({ connectionString: endpoints.pgUrl, max: 1 })
  afterAll(async () => {
    await pool.query(`DROP TABLE IF EXISTS "${table}"`)
    await pool.end()
  })

  it("inserts rate x duration realistic orders", async () => {
    await pool.query(ordersTableDdl(table))
    const result = await run("generate", ["--rate", "150", "--duration", "2", "--seed", "7"], {
      PG_URL: endpoints.pgUrl,
      POSTGRES_TABLE: table
    })
    expect(result.code, result.stderr).toBe(0)
    const { rows } = await pool.query(`
      SELECT count(*)::int AS n, count(DISTINCT restaurant_name)::int AS restaurants,
             bool_and(order_status IN ('PLACED','PREPARING','DELIVERED','CANCELLED')) AS statuses_ok,
             bool_and(amount > 0) AS amounts_ok, bool_and(created_at IS NOT NULL) AS dated
      FROM "${table}"`)
    expect(rows[0]).toEqual({ n: 300, restaurants: expect.any(Number), statuses_ok: true, amounts_ok: true, dated: true })
    expect(rows[0].restaurants).toBeGreaterThan(3)
    // Dishes belong to their restaurant.
    const { rows: mismatched } = await pool.query(
      `SELECT count(*)::int AS n FROM "${table}" WHERE restaurant_name = 'Pizza Palace' AND item NOT IN ('Margherita Pizza','Farmhouse Pizza','Garlic Bread')`
    )
    expect(mismatched[0].n).toBe(0)
  })

  it("with --lifecycle, gives orders a life: every order ends DELIVERED or CANCELLED, some amounts corrected, a few deleted", async () => {
    const lifeTable = `${table}_life`
    onTestFinished(async () => {
      await pool.query(`DROP TABLE IF EXISTS "${lifeTable}"`)
    })
    await pool.query(ordersTableDdl(lifeTable))
    const started = Date.now()
    const result = await run("generate", [
      "--rate", "100", "--duration", "2", "--seed", "11", "--lifecycle", "--lifecycle-seconds", "1",
      "--updates-per-order", "0.5", "--delete-rate", "0.1"
    ], { PG_URL: endpoints.pgUrl, POSTGRES_TABLE: lifeTable, LOG_FORMAT: "json" })
    expect(result.code, result.stderr).toBe(0)
    // Inserts for 2 s, then waits for the last lifecycle (at most 1.2 s after its insert).
    expect(Date.now() - started).toBeGreaterThan(2000)
    const { rows } = await pool.query(`
      SELECT count(*)::int AS n, max(order_id)::int - min(order_id)::int + 1 AS span,
             count(*) FILTER (WHERE order_status = 'DELIVERED')::int AS delivered,
             count(*) FILTER (WHERE order_status = 'CANCELLED')::int AS cancelled
      FROM "${lifeTable}"`)
    const { n, span, delivered, cancelled } = rows[0]
    // 200 inserted (ids 1..200 in a fresh table), about 10% deleted.
    expect(span).toBeLessThanOrEqual(200)
    expect(n).toBeGreaterThan(150)
    expect(n).toBeLessThan(200)
    expect(delivered + cancelled).toBe(n)
    expect(cancelled).toBeGreaterThan(0)
    expect(delivered).toBeGreaterThan(cancelled)
    // The generator's own count of what it did, from its last log line.
    const done = result.stdout.split("\n").filter((line) => line.startsWith("{")).map((line) => JSON.parse(line))
      .find((entry) => entry.message === "lifecycles done")
    expect(done, result.stdout).toBeDefined()
    const counts = done.annotations
    expect(Number(counts.untracked)).toBe(0)
    expect(Number(counts.deletes)).toBe(200 - n)
    expect(Number(counts.missing)).toBe(0)
    expect(Number(counts.amountUpdates)).toBeGreaterThan(50)
    expect(Number(counts.statusUpdates)).toBe(400)
  })
})
