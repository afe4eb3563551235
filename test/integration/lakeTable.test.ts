/**
 * The lake as a Delta table, end to end against real Apache Spark 4.0.1 + delta-spark 4.0.0: the real
 * producer and consumer write it from PostgreSQL through Kafka; Spark reads it (counts, sums, types,
 * time travel, history), appends to it and checkpoints it; we read Spark's writes and commit after them;
 * a reader counting in a loop while the compactor runs under live traffic never sees a torn version;
 * damaged logs fail naming the file. One Spark session for the whole file.
 */
import { Effect, Either, Layer } from "effect"
import { appendFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { storagePathOf } from "../../src/table/dataPaths.ts"
import { readOrdersFile } from "../../src/table/ordersFile.ts"
import { loadSnapshot, type SnapshotRequest } from "../../src/table/readLog.ts"
import { applyCommit, type Snapshot, statsOf } from "../../src/table/snapshot.ts"
import { writeCheckpoint } from "../../src/table/writeCheckpoint.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { logLines, type RunningProgram, startProgram } from "../support/pipelineProcess.ts"
import { type SparkSession, sparkSkipReason, startSpark } from "../support/spark.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

const skipReason = sparkSkipReason()

const pad = (version: number) => String(version).padStart(20, "0")

const snapshotOf = (lake: string, request: SnapshotRequest = {}) =>
  Effect.runPromise(loadSnapshot(request).pipe(Effect.provide(fileTableStorage(lake))))

const snapshotFailure = async (lake: string) => {
  const result = await Effect.runPromise(Effect.either(loadSnapshot().pipe(Effect.provide(fileTableStorage(lake)))))
  if (Either.isRight(result)) throw new Error(`loadSnapshot of ${lake} succeeded at version ${result.right.version}`)
  return result.left
}

const recordsOf = (snapshot: Snapshot) =>
  [...snapshot.files.values()].reduce((sum, add) => sum + (statsOf(add)?.numRecords ?? Number.NaN), 0)

/** Every row of every file of the snapshot, read back through the storage port: ids, and files missing. */
const readAllRows = (lake: string, snapshot: Snapshot) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const ids: Array<number> = []
    const missing: Array<string> = []
    for (const add of snapshot.files.values()) {
      const found = yield* storage.read(storagePathOf(add.path, storage.root))
      if (found === null) {
        missing.push(add.path)
        continue
      }
      const orders = yield* Effect.promise(() => readOrdersFile(found.bytes))
      for (const o of orders) ids.push(o.order_id)
    }
    return { ids, missing }
  }).pipe(Effect.provide(fileTableStorage(lake)), Effect.runPromise)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// Without Spark's jars outside CI the block is skipped with the reason; under CI sparkSkipReason() is
// null and a missing jar fails the suite (test/support/spark.ts).
describeIntegration("the lake as a Delta table", (endpoints) => {
  describe.skipIf(skipReason !== null)(`with Spark${skipReason === null ? "" : ` (skipped: ${skipReason})`}`, () => {
    let spark: SparkSession
    let scratch: string
    const open: Array<TestPipeline> = []
    const running: Array<RunningProgram> = []
    /** The first test's table, copied and damaged by the third. */
    let firstLake: string | undefined

    beforeAll(async () => {
      scratch = mkdtempSync(join(tmpdir(), "lake-table-"))
      const started = Date.now()
      spark = await startSpark({ queryTimeoutMs: 120_000 })
      console.info(`[lakeTable] Spark up in ${Date.now() - started} ms`)
    })

    afterAll(async () => {
      for (const program of running) await program.stop("SIGKILL").catch(() => undefined)
      await spark?.close()
      for (const p of open) await p.close()
      if (scratch) rmSync(scratch, { recursive: true, force: true })
    })

    const pipeline = async (prefix: string, extra: Record<string, string>) => {
      const p = await makeTestPipeline(endpoints, prefix, { extra })
      open.push(p)
      return p
    }

    const pgSummary = async (p: TestPipeline) => {
      const { rows: [totals] } = await p.pool.query(`SELECT count(*)::int AS n, sum(amount)::text AS sum FROM "${p.table}"`)
      const { rows: perDate } = await p.pool.query(
        `SELECT to_char(created_at::date, 'YYYY-MM-DD') AS date, count(*)::int AS n FROM "${p.table}" GROUP BY 1 ORDER BY 1`
      )
      return { n: totals.n as number, sum: totals.sum as string, perDate: perDate.map((r) => [r.date, r.n]) }
    }

    it("Spark reads what the pipeline commits, time-travels it, appends and checkpoints; we read Spark's writes and commit after them", async () => {
      const t0 = Date.now()
      const p = await pipeline("lt_spark", {
        PRODUCER_BATCH_SIZE: "500",
        CONSUMER_MAX_BATCH_MESSAGES: "200",
        TABLE_CHECKPOINT_INTERVAL: "5",
        TABLE_COMPACTION: "false"
      })
      firstLake = p.lake
      const table = `delta.\`${p.lake}\``
      const runBoth = async () => {
        p.ok(await p.run("producer"))
        return p.ok(await p.run("consumer"))
      }
      // Two rounds over four UTC dates: 2025-01-15 22:00 + 2,400 x 90 s ends on 2025-01-18 at 10:00.
      await p.pool.query(insertOrdersSql(p.table, 1, 1200, "2025-01-15 22:00:00", 90))
      await runBoth()
      await p.pool.query(insertOrdersSql(p.table, 1201, 1200, "2025-01-15 22:00:00", 90))
      await runBoth()
      const t1 = Date.now()

      const ours = await snapshotOf(p.lake)
      const log = join(p.lake, "_delta_log")
      const ourCheckpoints = readdirSync(log).filter((n) => n.endsWith(".checkpoint.parquet"))
      console.info(`[lakeTable] pipeline wrote version ${ours.version}, ${ours.files.size} files, checkpoints ${ourCheckpoints.join(", ")} (${t1 - t0} ms)`)
      expect(ours.version).toBeGreaterThanOrEqual(10)
      expect(ourCheckpoints.length).toBeGreaterThan(0)
      expect(existsSync(join(log, "_last_checkpoint"))).toBe(true)

      const source = await pgSummary(p)
      expect(source.n).toBe(2400)
      expect(source.perDate.length).toBe(4)
      expect(recordsOf(ours)).toBe(source.n)

      // Spark: count, exact sum, per-date counts, column types.
      const totals = await spark.sql(`SELECT count(*), sum(amount) FROM ${table}`)
      expect(totals.rows).toEqual([[source.n, source.sum]])
      const perDate = await spark.sql(`SELECT CAST(date AS STRING), count(*) FROM ${table} GROUP BY date ORDER BY date`)
      expect(perDate.rows).toEqual(source.perDate)
      const wrongPartition = await spark.sql(`SELECT count(*) FROM ${table} WHERE CAST(created_at AS DATE) <> date`)
      expect(wrongPartition.rows).toEqual([[0]])
      const typed = await spark.sql(`SELECT * FROM ${table} LIMIT 1`)
      expect(Object.fromEntries(typed.columns.map((c, i) => [c, typed.types[i]]))).toEqual({
        order_id: "bigint",
        customer_name: "string",
        restaurant_name: "string",
        item: "string",
        amount: "decimal(10,2)",
        order_status: "string",
        created_at: "timestamp",
        date: "date"
      })

      // Time travel: an earlier version (past our first checkpoint and before it) has that version's count.
      for (const version of [3, Math.floor(ours.version / 2) + 1, ours.version - 1]) {
        const expected = recordsOf(await snapshotOf(p.lake, { version }))
        const atVersion = await spark.sql(`SELECT count(*) FROM ${table} VERSION AS OF ${version}`)
        expect(atVersion.rows, `VERSION AS OF ${version}`).toEqual([[expected]])
      }

      // History: our commits, as Spark lists them.
      const history = await spark.sql(`DESCRIBE HISTORY ${table}`)
      const col = (name: string) => history.columns.indexOf(name)
      const operations = new Map(history.rows.map((r) => [r[col("version")] as number, r[col("operation")] as string]))
      expect(operations.get(0)).toBe("CREATE TABLE")
      expect(operations.size).toBe(ours.version + 1)
      for (let v = 1; v <= ours.version; v++) expect(operations.get(v), `version ${v}`).toBe("STREAMING UPDATE")
      const t2 = Date.now()

      // Spark appends: 12 commits, so it checkpoints at least once on its own (interval 5, or 10).
      const sparkCommits = 12
      const perInsert = 25
      for (let i = 0; i < sparkCommits; i++) {
        await spark.sql(`INSERT INTO ${table} (order_id, customer_name, restaurant_name, item, amount, order_status, created_at, date)
          SELECT ${10_000_000 + i * 1000} + id, concat('Spark ', CAST(id AS STRING)), 'Spark Diner', 'Spark Item',
                 CAST((id + 1) * 1.25 AS DECIMAL(10,2)), 'PLACED',
                 TIMESTAMP'2025-01-${16 + (i % 3)} 12:00:00' + make_interval(0, 0, 0, 0, 0, 0, id),
                 DATE'2025-01-${16 + (i % 3)}'
          FROM range(${perInsert})`)
      }
      const sparkRows = sparkCommits * perInsert
      const t3 = Date.now()
      const afterSpark = await snapshotOf(p.lake)
      expect(afterSpark.version).toBe(ours.version + sparkCommits)
      const sparkCheckpoints = readdirSync(log).filter((n) => n.endsWith(".checkpoint.parquet")).filter((n) => !ourCheckpoints.includes(n))
      console.info(`[lakeTable] Spark appended ${sparkCommits} commits (${t3 - t2} ms), wrote checkpoints ${sparkCheckpoints.join(", ")}`)
      expect(sparkCheckpoints.length).toBeGreaterThan(0)
      // Our reader starts from Spark's checkpoint (the newest), and agrees with Spark's count.
      const lastCheckpoint = JSON.parse(readFileSync(join(log, "_last_checkpoint"), "utf8")) as { version: number }
      expect(sparkCheckpoints).toContain(`${pad(lastCheckpoint.version)}.checkpoint.parquet`)
      const sparkCount = (await spark.sql(`SELECT count(*) FROM ${table}`)).rows[0]![0]
      expect(recordsOf(afterSpark)).toBe(sparkCount)
      expect(sparkCount).toBe(source.n + sparkRows)
      const { ids, missing } = await readAllRows(p.lake, afterSpark)
      expect(missing).toEqual([])
      expect(ids.length).toBe(sparkCount)
      expect(new Set(ids).size).toBe(ids.length)

      // Our next commit, after Spark's: more orders through producer and consumer.
      await p.pool.query(insertOrdersSql(p.table, 2401, 600, "2025-01-18 12:00:00", 60))
      const consumer = await runBoth()
      const drained = logLines(consumer).find((l) => l["message"] === "drained")?.["annotations"] as Record<string, unknown>
      expect(drained).toMatchObject({ written: 600, duplicates: 0 })
      const final = await snapshotOf(p.lake)
      expect(final.version).toBeGreaterThan(afterSpark.version)
      const after = await pgSummary(p)
      const sparkTotals = await spark.sql(`SELECT count(*), count(DISTINCT order_id) FROM ${table}`)
      expect(sparkTotals.rows).toEqual([[after.n + sparkRows, after.n + sparkRows]])
      expect((await spark.sql(`SELECT count(*), sum(amount) FROM ${table} WHERE order_id < 10000000`)).rows).toEqual([[after.n, after.sum]])
      expect(recordsOf(final)).toBe(after.n + sparkRows)
      const lastOps = await spark.sql(`DESCRIBE HISTORY ${table} LIMIT 1`)
      expect(lastOps.rows[0]![lastOps.columns.indexOf("operation")]).toBe("STREAMING UPDATE")
      console.info(`[lakeTable] test 1: pipeline ${t1 - t0} ms, Spark reads ${t2 - t1} ms, Spark appends ${t3 - t2} ms, after ${Date.now() - t3} ms`)
    }, 240_000)

    it("a reader counting in a loop while the compactor runs under live traffic never sees a torn version", async () => {
      const t0 = Date.now()
      const p = await pipeline("lt_live", {
        STREAMING_BATCH_INTERVAL: "0.3",
        PRODUCER_BATCH_SIZE: "200",
        CONSUMER_MAX_BATCH_MESSAGES: "50",
        CONSUMER_LINGER_MS: "50",
        CONSUMER_BACKLOG_LINGER_MS: "100",
        TABLE_CHECKPOINT_INTERVAL: "4",
        TABLE_COMPACTION: "true",
        TABLE_COMPACTION_FAN_IN: "2"
      })
      const consumer = startProgram("consumer", p.env)
      running.push(consumer)
      await consumer.waitForLog((l) => l["message"] === "table open", 60_000)
      const producer = startProgram("producer", p.env)
      running.push(producer)

      // A stream of inserts: 40 x 40 orders, 250 ms apart, over three dates (2025-02-01 + g x 162 s; the
      // capture key only moves forward, so each chunk is later than the one before).
      let inserting = true
      let stopInserts = false
      const inserts = (async () => {
        try {
          for (let i = 0; i < 40 && !stopInserts; i++) {
            await p.pool.query(insertOrdersSql(p.table, 1 + i * 40, 40, "2025-02-01 00:00:00", 162))
            await sleep(250)
          }
        } finally {
          inserting = false
        }
      })()

      const seen = new Map<number, number>() // version -> count
      let loops = 0
      let maxFiles = 0
      const check = async () => {
        const snapshot = await snapshotOf(p.lake)
        if (snapshot.version < 0) return snapshot
        const { ids, missing } = await readAllRows(p.lake, snapshot)
        expect(missing, `version ${snapshot.version}`).toEqual([])
        expect(ids.length, `version ${snapshot.version}`).toBe(recordsOf(snapshot))
        expect(new Set(ids).size, `version ${snapshot.version}`).toBe(ids.length)
        seen.set(snapshot.version, ids.length)
        maxFiles = Math.max(maxFiles, snapshot.files.size)
        loops += 1
        return snapshot
      }
      const total = async () => (await p.pool.query(`SELECT count(*)::int AS n FROM "${p.table}"`)).rows[0].n as number
      let final: Snapshot | undefined
      const deadline = Date.now() + 90_000
      try {
        while (Date.now() < deadline) {
          const snapshot = await check()
          if (!inserting && snapshot.version >= 0 && recordsOf(snapshot) === (await total())) {
            final = snapshot
            break
          }
          await sleep(50)
        }
      } finally {
        stopInserts = true
        await inserts
      }
      if (final === undefined) {
        const last = await snapshotOf(p.lake)
        const brief = (logs: Array<Record<string, unknown>>) =>
          logs.filter((l) => l["level"] !== "DEBUG").slice(-15).map((l) => `${String(l["level"])} ${String(l["message"])} ${JSON.stringify(l["annotations"])}`).join("\n")
        console.info(`[lakeTable] stuck at version ${last.version} with ${recordsOf(last)} rows\nconsumer:\n${brief(consumer.logs())}\nproducer:\n${brief(producer.logs())}`)
      }
      expect(final, `the table did not catch up with PostgreSQL (${await total()} rows)`).toBeDefined()
      // Let the compactor settle on what the last commits filled, then stop.
      await sleep(1500)
      expect(await producer.stop()).toBe(0)
      expect(await consumer.stop()).toBe(0)
      const t1 = Date.now()

      const end = await check()
      const pgCount = await total()
      expect(pgCount).toBe(1600)
      expect(recordsOf(end)).toBe(pgCount)
      const log = join(p.lake, "_delta_log")
      const commits = readdirSync(log).filter((n) => /^\d{20}\.json$/.test(n))
      const operations = commits.map((n) => {
        const info = readFileSync(join(log, n), "utf8").split("\n").filter((l) => l.includes("\"commitInfo\""))
        return info.length === 0 ? "?" : (JSON.parse(info[0]!) as { commitInfo: { operation: string } }).commitInfo.operation
      })
      const optimizes = operations.filter((o) => o === "OPTIMIZE").length
      const streaming = operations.filter((o) => o === "STREAMING UPDATE").length
      const compactedLogs = consumer.logs().filter((l) => l["message"] === "compacted").length
      console.info(`[lakeTable] live: ${loops} reads over ${seen.size} versions (to ${end.version}); ${streaming} streaming commits, ${optimizes} OPTIMIZE, ${compactedLogs} 'compacted' logs; files now ${end.files.size} (max seen ${maxFiles}); checkpoints ${readdirSync(log).filter((n) => n.endsWith(".checkpoint.parquet")).length} (${t1 - t0} ms)`)
      expect(optimizes).toBeGreaterThan(0)
      expect(end.files.size).toBeLessThan(streaming)
      expect(loops).toBeGreaterThan(5)

      // Spark counts the versions we read, and the last.
      const table = `delta.\`${p.lake}\``
      const versions = [...seen.keys()].sort((a, b) => a - b)
      const picks = [...new Set([versions[Math.floor(versions.length / 4)]!, versions[Math.floor(versions.length / 2)]!, versions[Math.floor((versions.length * 3) / 4)]!, end.version])]
      for (const v of picks) {
        const atVersion = await spark.sql(`SELECT count(*), count(DISTINCT order_id) FROM ${table} VERSION AS OF ${v}`)
        expect(atVersion.rows, `VERSION AS OF ${v}`).toEqual([[seen.get(v), seen.get(v)]])
      }
      const { rows: [src] } = await p.pool.query(`SELECT count(*)::int AS n, sum(amount)::text AS sum FROM "${p.table}"`)
      expect((await spark.sql(`SELECT count(*), sum(amount) FROM ${table}`)).rows).toEqual([[src.n, src.sum]])
      console.info(`[lakeTable] test 2: live ${t1 - t0} ms, Spark checks ${Date.now() - t1} ms (versions ${picks.join(", ")})`)
    }, 180_000)

    it("a damaged log fails naming the file: a truncated or garbage-ended commit, a missing checkpoint, an unknown reader feature", async () => {
      expect(firstLake, "needs the first test's table").toBeDefined()
      const copyOf = (name: string) => {
        const copy = join(scratch, name)
        cpSync(join(firstLake!, "_delta_log"), join(copy, "_delta_log"), { recursive: true })
        return copy
      }
      const original = await snapshotOf(firstLake!)
      const latest = original.version
      const lastCommitText = readFileSync(join(firstLake!, "_delta_log", `${pad(latest)}.json`), "utf8")

      // The last commit cut short, mid-line.
      const truncated = copyOf("truncated")
      const cut = lastCommitText.length - Math.floor(lastCommitText.split("\n").filter((l) => l !== "").at(-1)!.length / 2) - 1
      const truncatedFile = join(truncated, "_delta_log", `${pad(latest + 1)}.json`)
      writeFileSync(truncatedFile, lastCommitText.slice(0, cut))
      const e1 = await snapshotFailure(truncated)
      expect(e1._tag).toBe("TableError")
      expect(e1).toMatchObject({ reason: "corrupt", path: truncatedFile })
      expect(e1.message).toContain(truncatedFile)

      // Garbage appended to the last commit.
      const garbage = copyOf("garbage")
      const garbageFile = join(garbage, "_delta_log", `${pad(latest)}.json`)
      if (!existsSync(join(garbage, "_delta_log", `${pad(latest)}.checkpoint.parquet`))) {
        appendFileSync(garbageFile, "{\"add\": {\"path\": \"date=2025-01-1\u0000\xff garbage")
        const e2 = await snapshotFailure(garbage)
        expect(e2).toMatchObject({ _tag: "TableError", reason: "corrupt", path: garbageFile })
      }
      // ... and past a checkpoint at the same version: a new last version of garbage.
      const garbageNext = join(garbage, "_delta_log", `${pad(latest + 1)}.json`)
      writeFileSync(garbageFile, lastCommitText)
      writeFileSync(garbageNext, "\u0000\u0001 not json at all\n")
      const e3 = await snapshotFailure(garbage)
      expect(e3).toMatchObject({ _tag: "TableError", reason: "corrupt", path: garbageNext })

      // `_last_checkpoint` names a checkpoint that is gone.
      const noCheckpoint = copyOf("no_checkpoint")
      const hint = JSON.parse(readFileSync(join(noCheckpoint, "_delta_log", "_last_checkpoint"), "utf8")) as { version: number }
      const checkpointFile = join(noCheckpoint, "_delta_log", `${pad(hint.version)}.checkpoint.parquet`)
      expect(existsSync(checkpointFile)).toBe(true)
      rmSync(checkpointFile)
      const e4 = await snapshotFailure(noCheckpoint)
      expect(e4).toMatchObject({ _tag: "TableError", reason: "missing", path: checkpointFile })
      expect(e4.message).toContain(checkpointFile)

      // A reader feature we do not implement.
      const features = copyOf("features")
      writeFileSync(
        join(features, "_delta_log", `${pad(latest + 1)}.json`),
        JSON.stringify({
          protocol: { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: ["deletionVectors"], writerFeatures: ["deletionVectors"] }
        }) + "\n" + JSON.stringify({ commitInfo: { timestamp: Date.now(), operation: "SET TBLPROPERTIES" } }) + "\n"
      )
      const e5 = await snapshotFailure(features)
      expect(e5).toMatchObject({ _tag: "TableError", reason: "unsupported" })
      expect(e5.message).toMatch(/unsupported/)
      expect(e5.message).toContain("deletionVectors")

      // A checkpoint (and `_last_checkpoint`) written between a reader's listing and its read of the hint
      // is no damage: the reader sees the newer hint, and the checkpoint it names is there.
      const racing = copyOf("racing")
      const base = Effect.runSync(TableStorage.pipe(Effect.provide(fileTableStorage(racing))))
      const nextActions = [{ commitInfo: { timestamp: Date.now(), operation: "SET TBLPROPERTIES" } }] as never
      writeFileSync(join(racing, "_delta_log", `${pad(latest + 1)}.json`), JSON.stringify({ commitInfo: { timestamp: Date.now(), operation: "SET TBLPROPERTIES" } }) + "\n")
      const next = applyCommit(original, latest + 1, nextActions, Date.now())
      let raced = false
      const racingStorage = Layer.succeed(TableStorage, TableStorage.of({
        ...base,
        list: (prefix) =>
          base.list(prefix).pipe(Effect.tap(() =>
            raced || prefix !== "_delta_log/" ? Effect.void : writeCheckpoint(next, 0).pipe(
              Effect.provideService(TableStorage, base),
              Effect.tap(() => Effect.sync(() => (raced = true)))
            )
          ))
      }))
      const racedRead = await Effect.runPromise(Effect.either(loadSnapshot().pipe(Effect.provide(racingStorage))))
      expect(raced).toBe(true)
      expect(Either.isRight(racedRead), Either.isLeft(racedRead) ? racedRead.left.message : "").toBe(true)
      expect(recordsOf((racedRead as Either.Right<never, Snapshot>).right)).toBe(recordsOf(original))

      // The undamaged table still reads.
      expect((await snapshotOf(firstLake!)).version).toBe(latest)
    }, 60_000)
  })
})
