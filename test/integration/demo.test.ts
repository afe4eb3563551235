/**
 * `npm run demo` as a newcomer runs it, on a machine with nothing but Node: its own process, an
 * embedded PostgreSQL, the in-process topic and a real lake; then the lake is read back here with
 * DuckDB, independently of what the demo reports. Needs no outside service.
 */
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { programArgs } from "../../scripts/programs.ts"
import { repoRoot } from "../../scripts/stack/paths.ts"
import { Effect } from "effect"
import { openLakeVersion, readLakeVersion, runQuery } from "../../src/analytics/lakeQuery.ts"
import { menus } from "../../src/generator/menu.ts"
import { summariseLake } from "../support/lakeSummary.ts"

interface DemoResult {
  readonly ok: boolean
  readonly generated: number
  readonly restaurants_in_postgres: number
  readonly restaurants_lake_rows: number
  readonly lake_rows: number
  readonly files: number
  readonly lake: string
}

const runDemo = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [...programArgs("demo"), ...args], {
      cwd: repoRoot,
      env: { ...process.env, LOG_FORMAT: "" },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 150_000
    }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }))
  })

describe("npm run demo", () => {
  const dir = mkdtempSync(join(tmpdir(), "fop-demo-"))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it("runs the whole pipeline embedded and leaves every generated order in the lake, typed", async () => {
    const run = await runDemo(["--duration", "5", "--dir", dir])
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0)
    expect(run.stdout).toContain("in-process (memory) topic")
    expect(run.stdout).toMatch(/embedded PGlite \(PostgreSQL [\d.]+\) on 127\.0\.0\.1:\d+/)

    const line = run.stdout.split("\n").find((l) => l.startsWith("DEMO_RESULT "))
    expect(line, run.stdout).toBeDefined()
    const result = JSON.parse(line!.slice("DEMO_RESULT ".length)) as DemoResult
    expect(result.ok).toBe(true)
    // ~50 orders/s for 5 s; the exact number depends on the clock, not on the pipeline.
    expect(result.generated).toBeGreaterThan(100)
    expect(relative(dir, result.lake).startsWith("..")).toBe(false)

    // The table the demo wrote, read through its log by DuckDB, independently of the demo's summary.
    const lake = await summariseLake(result.lake)
    expect(lake.rows).toBe(result.generated)
    expect(lake.distinctIds).toBe(result.generated)
    expect(lake.files).toBe(result.files)

    // The second table: the menu's restaurants, and one opened each second of the run, polled by key.
    expect(result.restaurants_in_postgres).toBe(Object.keys(menus).length + 5)
    const restaurants = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const orders = yield* readLakeVersion(result.lake)
      const table = yield* readLakeVersion(join(result.lake, "..", "restaurants"))
      const db = yield* openLakeVersion(orders, undefined, [{ name: "restaurants", lake: table, changes: undefined }])
      return (yield* runQuery(db, `SELECT count(*), count(DISTINCT restaurant_id), count(rating), typeof(any_value(dishes)), typeof(any_value(rating))
        FROM restaurants`)).rows[0]
    })))
    expect(restaurants).toEqual([String(result.restaurants_in_postgres), String(result.restaurants_in_postgres), String(Object.keys(menus).length), "VARCHAR[]", "DECIMAL(2,1)"])
    expect(result.restaurants_lake_rows).toBe(result.restaurants_in_postgres)
    expect(lake.types).toMatchObject({
      order_id: "BIGINT",
      amount: "DECIMAL(10,2)",
      created_at: "TIMESTAMP WITH TIME ZONE",
      date: "DATE"
    })
  }, 180_000)
})
