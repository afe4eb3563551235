/**
 * `npm run bench -- --smoke` as CI runs it: a process against the suite's PostgreSQL and Kafka, which
 * must leave a JSON and a markdown result with every scenario present and sane. No timing is
 * asserted (the machine is shared); counts are: every order of every scenario reached the lake once.
 */
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { type BenchResult, resultProblems } from "../../bench/result.ts"
import { repoRoot } from "../../scripts/stack/paths.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { grantReplication } from "../support/logicalPostgres.ts"

const allScenarios = ["backfill", "native", "steady", "ceiling", "reference", "trickle", "scale", "capture", "tables"] as const

describeIntegration("npm run bench -- --smoke", (endpoints) => {
  const out = mkdtempSync(join(tmpdir(), "fop-bench-test-"))
  afterAll(() => rmSync(out, { recursive: true, force: true }))

  it("writes a JSON and a markdown result with every scenario, all orders accounted for", async () => {
    // The capture scenario streams through a replication slot as the suite's role.
    await grantReplication(endpoints)
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        ["--import", "tsx", join(repoRoot, "bench", "bench.ts"), "--smoke", "--out", out],
        {
          cwd: repoRoot,
          env: {
            ...process.env,
            PG_URL: endpoints.pgUrl,
            KAFKA_BROKERS: endpoints.kafkaBrokers,
            ...(endpoints.kafkaVersion === undefined ? {} : { KAFKA_VERSION: endpoints.kafkaVersion }),
            // The scale scenario's lake on the suite's S3 server when it has one (else the bench starts its own S3Proxy).
            ...(endpoints.s3 === null ? {} : {
              AWS_ENDPOINT_URL_S3: endpoints.s3.endpoint,
              AWS_ACCESS_KEY_ID: endpoints.s3.accessKeyId,
              AWS_SECRET_ACCESS_KEY: endpoints.s3.secretAccessKey,
              AWS_REGION: endpoints.s3.region,
              LAKE_BUCKET: endpoints.s3.bucket
            })
          },
          timeout: 600_000,
          maxBuffer: 32 * 1024 * 1024
        },
        (error, stdout, stderr) =>
          resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr })
      )
    })
    expect(run.code, run.stderr.slice(-6000)).toBe(0)

    const written = readdirSync(out)
    const jsonName = written.find((name) => /^smoke-\d{8}-\d{6}\.json$/.test(name))
    expect(jsonName, `files: ${written.join(", ")}`).toBeDefined()
    expect(written).toContain("smoke.md")
    expect(run.stdout.trim().split("\n")).toEqual([join(out, jsonName!), join(out, "smoke.md")])

    const result = JSON.parse(readFileSync(join(out, jsonName!), "utf8")) as BenchResult
    expect(resultProblems(result, allScenarios)).toEqual([])
    expect(result.mode).toBe("smoke")
    expect(result.machine.cores).toBeGreaterThan(0)
    expect(result.machine.kafka).not.toBe("")

    const { backfill, native, steady, ceiling, reference } = result.scenarios
    // Row counts equal, scenario by scenario.
    for (const r of backfill!.runs) expect([r.lakeRows, r.distinctIds]).toEqual([r.rows, r.rows])
    expect(native!.pgCopy!.runs.map((r) => r.rows)).toEqual([native!.rows])
    if (native!.copyToKcat !== undefined) expect(native!.copyToKcat.runs.map((r) => r.rows)).toEqual([native!.rows])
    if (native!.kcatConsume !== undefined) expect(native!.kcatConsume.runs.map((r) => r.rows)).toEqual([native!.rows])
    expect(native!.kafkajsPublish!.runs.map((r) => r.rows)).toEqual([native!.kafkajsRows])
    for (const latency of [steady!, reference!]) {
      expect(latency.steps.length).toBeGreaterThan(0)
      for (const step of latency.steps) {
        expect({ label: step.label, lake: step.lakeRows, measured: step.latencyMs.count, missing: step.missing, duplicates: step.duplicates })
          .toEqual({ label: step.label, lake: step.inserted, measured: step.inserted, missing: 0, duplicates: 0 })
      }
    }
    expect(ceiling!.steps.length).toBeGreaterThan(0)
    const trickle = result.scenarios.trickle!
    expect({ missing: trickle.missing, measured: trickle.latencyMs.count, counted: trickle.count?.tableRows, oneFile: trickle.count?.oneFileRows })
      .toEqual({ missing: 0, measured: trickle.inserted, counted: trickle.allInserted, oneFile: trickle.allInserted })
    expect(trickle.samples.length).toBeGreaterThan(0)
    // Scale: the lake local and on S3 (the run's own S3Proxy), 1 and 3 consumers; every order once.
    const scale = result.scenarios.scale!
    expect(scale.backfill.map((r) => `${r.store} x${r.consumers}`)).toEqual(["local x1", "local x3", "s3 x1", "s3 x3"])
    for (const r of scale.backfill) expect([r.lake.rows, r.lake.distinctIds]).toEqual([r.rows, r.rows])
    expect(scale.latency.map((r) => r.store)).toEqual(["local", "s3"])
    for (const r of scale.latency) {
      expect({ store: r.store, lake: r.lakeRows, measured: r.latencyMs.count, missing: r.missing, duplicates: r.duplicates })
        .toEqual({ store: r.store, lake: r.inserted, measured: r.inserted, missing: 0, duplicates: 0 })
    }
    // Capture: poll against logical in the same run. Poll captures the inserts (its updates are not
    // captured: its table keeps the orders as inserted); logical every insert and update, and its
    // orders table ends equal to PostgreSQL. Every slot the scenario made is gone.
    const capture = result.scenarios.capture!
    expect(capture.latency.map((r) => `${r.mode}/${r.load}`)).toEqual(["poll/mix", "logical/mix"])
    for (const r of capture.latency) {
      expect(r.updated).toBeGreaterThan(0)
      expect({ run: `${r.mode}/${r.load}`, missing: r.missingInserts, measured: r.insertLatencyMs.count })
        .toEqual({ run: `${r.mode}/${r.load}`, missing: 0, measured: r.inserted })
    }
    const [pollMix, logicalMix] = capture.latency
    expect(pollMix!.updateLatencyMs).toBeNull()
    expect(pollMix!.state.lake.rows).toBe(pollMix!.state.source.rows)
    expect({ missing: logicalMix!.missingUpdates, measured: logicalMix!.updateLatencyMs?.count, equal: logicalMix!.state.equal })
      .toEqual({ missing: 0, measured: logicalMix!.updated, equal: true })
    expect(capture.backfill.map((r) => r.mode)).toEqual(["poll", "logical"])
    for (const r of capture.backfill) expect([r.lake.rows, r.lake.distinctIds]).toEqual([r.rows, r.rows])
    expect(capture.slots.created.length).toBeGreaterThan(0)
    expect(capture.slots.left).toEqual([])
    // Tables: the orders table alone, then with restaurants and order_items beside it, one producer
    // and consumer; every table's Delta table ends with every row, every change measured once.
    const tables = result.scenarios.tables!
    expect(tables.backfill.map((r) => `${r.setup}: ${r.tables.map((t) => `${t.table} ${t.lakeRows}`).join(", ")}`)).toEqual([
      `orders: orders ${tables.rows}`,
      `three: orders ${tables.rows}, restaurants ${tables.rows}, order_items ${tables.rows}`
    ])
    expect(tables.latency.map((r) => `${r.setup}: ${r.tables.map((t) => t.table).join(", ")}`)).toEqual(["orders: orders", "three: orders, restaurants, order_items"])
    for (const run of tables.latency) {
      for (const t of run.tables) {
        expect(t.updated).toBeGreaterThan(0)
        expect({ table: `${run.setup}/${t.table}`, missing: t.missing, measured: t.latencyMs.count, rows: t.lakeRows })
          .toEqual({ table: `${run.setup}/${t.table}`, missing: 0, measured: t.inserted + t.updated, rows: t.sourceRows })
      }
    }
    expect(tables.summary.latency.find((l) => l.setup === "orders")?.vsOrdersAlone.p50).toBe(1)
    expect(tables.slots.created.length).toBe(4)
    expect(tables.slots.left).toEqual([])
    expect(result.targets.map((t) => t.name)).toHaveLength(10)

    const markdown = readFileSync(join(out, "smoke.md"), "utf8")
    for (const heading of ["## Targets", "## Backfill", "## Native tools", "## Steady inserts", "## Reference-like poller", "## Ceiling", "## Trickle", "## Scale", "## Capture", "## Tables"]) {
      expect(markdown).toContain(heading)
    }
    // Nothing of the run is left behind: its temporary state directories are gone.
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith("fop-bench-") && existsSync(join(tmpdir(), name, "output")))).toEqual([])
  }, 620_000)
})
