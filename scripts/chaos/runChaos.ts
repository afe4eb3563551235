import { setMaxListeners } from "node:events"
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type pg from "pg"
import { uniqueName } from "../../test/support/names.ts"
import { pipelineEnv } from "../../test/support/pipelineProcess.ts"
import { type ChaosBroker, startChaosBroker } from "./broker.ts"
import { capturedTableCounts, type CapturedTableCheck, checkCapturedTable } from "./capturedTableCheck.ts"
import { compareLake, type LakeComparison } from "./compare.ts"
import { committedCount, createOrdersTable, dropOrdersTable, openPool, redactUrl, resolvePgUrl } from "./database.ts"
import { diagnoseMissing } from "./diagnose.ts"
import { checkDeadLetters, type DeadLetterCheck, GarbageInjector, topicExists } from "./garbage.ts"
import { waitForDrain } from "./drain.ts"
import { ChangeLedger } from "./changeLedger.ts"
import { type FaultContext, injectGarbage, killProgram, logicalProducerProgress, restartBroker, restartPostgres, restartS3 } from "./faults.ts"
import { checkHistory, type HistoryCheck } from "./history.ts"
import { bulkUpdate, lifecycleWorkload, multiStatementTransactions } from "./lifecycles.ts"
import { dropCapture, insertSnapshotRows, prepareLogical } from "./logicalSetup.ts"
import { newOutageStats } from "./pgOutage.ts"
import { clusterRestarter, localCluster, type PgRestarter, proxyRestarter } from "./pgRestart.ts"
import { type GeneratorStats, runGenerator } from "./generator.ts"
import type { ChaosOptions } from "./options.ts"
import { seededRandom } from "./random.ts"
import { type ChaosReport, failuresOf, type ProgramKills, type ProgramStop } from "./report.ts"
import { createRestaurantsTable, RestaurantChanges, restaurantColumns, restaurantsTablesYaml, restaurantsTableOf } from "./restaurants.ts"
import { type ChaosS3, startChaosS3 } from "./s3.ts"
import { defaultConfigFile } from "../../src/config/loadConfig.ts"
import { repoRoot } from "../stack/paths.ts"
import { startLossyS3Proxy } from "../../test/support/lossyS3Proxy.ts"
import { s3EnvOf } from "../stack/s3Server.ts"
import { crashPointsFor, type ProgramName, ProgramSupervisor } from "./supervisor.ts"
import { seconds, sleep, sleepOrAbort, throwIfAborted } from "./timing.ts"
import { spawnWatchdog } from "./watchdog.ts"

export type { ChaosOptions } from "./options.ts"
export type { ChaosReport } from "./report.ts"

/** Logged once the program's main runs, i.e. its SIGTERM handling is in place. */
const startedLine: Record<ProgramName, RegExp> = {
  producer: /"message":"producer starting"/,
  consumer: /"message":"consumer starting"/
}

/**
 * One fault-injection run against the real stack: its own broker, table, topics and lake; an order
 * generator with late commits, rollbacks and timestamp ties; both programs SIGKILLed at random
 * moments (and at crash points), the broker SIGKILLed and restarted, garbage in the raw topic; then a
 * drain, a clean SIGTERM stop, and PostgreSQL compared with the lake and the dead-letter topic.
 * Resolves with the report (check `ok`); rejects only when the run could not be carried out (or
 * was cancelled), after stopping everything it started.
 */
export const runChaos = async (options: ChaosOptions): Promise<ChaosReport> => {
  const wallStart = Date.now()
  const log = options.log ?? ((line: string) => process.stderr.write(`[chaos] ${line}\n`))
  const rng = seededRandom(options.seed)
  const failed = new AbortController()
  const abort = options.signal === undefined ? failed.signal : AbortSignal.any([options.signal, failed.signal])
  // Every waiting worker listens to it (lifecycles, transactions, faults).
  setMaxListeners(1000, abort)
  const roll = uniqueName("chaos")
  const table = `${roll}_orders`
  // Logical capture: a second table beside the orders (tables:), into its own topic and Delta table.
  const restaurantsTable = restaurantsTableOf(roll)
  const topic = `${roll}_food_orders_raw`
  const dlqTopic = `${roll}_food_orders_dlq`
  const stateDir = mkdtempSync(join(tmpdir(), "fop-chaos-"))
  const eventsFile = join(stateDir, "events.jsonl")
  const event = (what: string, details: Record<string, unknown> = {}) =>
    appendFileSync(eventsFile, JSON.stringify({ at_ms: Date.now() - wallStart, event: what, ...details }) + "\n")

  let pool: pg.Pool | undefined
  let restarter: PgRestarter | undefined
  let logicalCleanup: (() => Promise<void>) | undefined
  let broker: ChaosBroker | undefined
  let s3: ChaosS3 | undefined
  let lossy: Awaited<ReturnType<typeof startLossyS3Proxy>> | undefined
  // The run reads the table itself (drain, comparison): with the lake on S3 it needs the server's
  // AWS_* settings in its own environment too, restored at the end.
  const savedEnv: Record<string, string | undefined> = {}
  const supervisors: Array<ProgramSupervisor> = []
  let passed = false
  let restaurantsCreated = false
  try {
    const { pgUrl: directUrl, source } = await resolvePgUrl(options.pgUrl)
    const logical = options.capture === "logical"
    if (logical) {
      // wal_level = logical (set, with one restart of the local cluster, when it can), REPLICATION.
      await prepareLogical(directUrl, log)
      logicalCleanup = () => dropCapture(directUrl, table, log)
    }
    // PostgreSQL restarts: the cluster itself when the run may restart it, else none (with why);
    // or the run's own proxy, whose connections it cuts.
    let pgRestarts = options.pgRestarts
    let pgRestartSkipped: string | null = null
    if (pgRestarts > 0 && options.pgRestartVia === "cluster") {
      const cluster = await localCluster(directUrl)
      if ("cannot" in cluster) {
        pgRestartSkipped = cluster.cannot
        pgRestarts = 0
        log(`PostgreSQL restarts skipped: cannot restart the cluster (${cluster.cannot}); --pg-restart proxy cuts the run's connections instead`)
      } else {
        restarter = clusterRestarter(directUrl, cluster)
        log(`PostgreSQL restarts: ${pgRestarts} × pg_ctlcluster ${cluster.version} ${cluster.name} stop/start (every client of the server sees them)`)
      }
    } else if (pgRestarts > 0) {
      restarter = await proxyRestarter(directUrl)
      log(`PostgreSQL restarts: ${pgRestarts} × cutting the run's connections at its proxy ${redactUrl(restarter.pgUrl)}`)
    }
    const pgUrl = restarter?.pgUrl ?? directUrl
    pool = await openPool(pgUrl, 12)
    await createOrdersTable(pool, table)
    // Logical: some names over 4 kB (multiStatementTransactions), stored out of line: text, not VARCHAR(255).
    if (logical) await pool.query(`ALTER TABLE "${table}" ALTER COLUMN customer_name TYPE text`)
    log(`roll ${roll}, seed ${options.seed}, capture ${options.capture}, state ${stateDir}; PostgreSQL ${redactUrl(directUrl)} (${source})`)
    throwIfAborted(abort)
    // Logical capture: orders already there when the producer first starts come through the slot's snapshot.
    const ledger = new ChangeLedger()
    const restaurants = logical ? new RestaurantChanges(restaurantsTable, new ChangeLedger(), rng.fork("restaurants")) : undefined
    if (restaurants !== undefined) {
      await createRestaurantsTable(pool, restaurantsTable)
      restaurantsCreated = true
      const rows = Math.max(50, Math.round(options.snapshotRows / 5))
      await restaurants.insertSnapshot(pool, rows)
      log(`second table ${restaurantsTable}: ${rows} rows before the producer starts (its snapshot), partitioned by opened_at`)
    }
    if (logical && options.snapshotRows > 0) {
      const ids = await insertSnapshotRows(pool, table, options.snapshotRows)
      for (const id of ids) ledger.record(id, "snapshot")
      log(`${ids.length} orders in the table before the producer starts (its snapshot)`)
    }

    const brokerStarting = Date.now()
    broker = await startChaosBroker()
    log(`own Kafka broker at ${broker.brokers} (pid ${broker.pid()}), up in ${seconds(Date.now() - brokerStarting)}`)
    event("broker-started", { brokers: broker.brokers, pid: broker.pid() })
    let lakeOverride: Record<string, string> = {}
    if (options.lake === "s3") {
      s3 = await startChaosS3(join(stateDir, "s3"))
      const s3Env = s3EnvOf(s3.endpoint)
      for (const [key, value] of Object.entries(s3Env)) {
        savedEnv[key] = process.env[key]
        process.env[key] = value
      }
      // The programs reach S3 through a proxy that loses one answer to a commit in ten after the
      // server applied it: each such commit must be recognised as the program's own (issue 18).
      const losing = rng.fork("s3-lost-answers")
      lossy = await startLossyS3Proxy(s3.endpoint.endpoint, () => losing.chance(0.1))
      lakeOverride = { ...s3Env, AWS_ENDPOINT_URL_S3: lossy.endpoint, DATALAKE_PATH: `s3://${s3.endpoint.bucket}/${roll}/output/orders` }
      log(`own S3 server (S3Proxy) at ${s3.endpoint.endpoint} (pid ${s3.pid()}), lake ${lakeOverride["DATALAKE_PATH"]}`)
      event("s3-started", { endpoint: s3.endpoint.endpoint, pid: s3.pid() })
    }
    const pidDir = join(stateDir, "pids")
    const consumerNames = Array.from({ length: options.consumers }, (_, i) => (i === 0 ? "consumer" : `consumer-${i + 1}`))
    spawnWatchdog({
      ownerPid: process.pid,
      pidFiles: [
        broker.files.pidFile,
        ...(s3 === undefined ? [] : [s3.pidFile]),
        ...["producer", ...consumerNames].map((name) => join(pidDir, `${name}.pid`))
      ],
      removeDirs: [broker.dir]
    })
    throwIfAborted(abort)

    const env = pipelineEnv({
      pgUrl,
      kafkaBrokers: broker.brokers,
      roll,
      stateDir,
      extra: {
        STREAMING_BATCH_INTERVAL: String(options.batchIntervalS),
        PRODUCER_BATCH_SIZE: String(options.producerBatchSize),
        CONSUMER_MAX_BATCH_MESSAGES: String(options.consumerMaxBatchMessages),
        CAPTURE_MODE: options.capture,
        ...(logical ? { CAPTURE_SNAPSHOT_CHUNK: "400" } : {}),
        ...lakeOverride
      }
    })
    const lake = env["DATALAKE_PATH"]!
    // tables: with partition_by has no environment variable: the programs get a config file (the
    // defaults plus the entry); the environment still overrides everything else.
    const programArgs: Array<string> = []
    if (restaurants !== undefined) {
      const configFile = join(stateDir, "orders_stream.yml")
      writeFileSync(configFile, `${readFileSync(join(repoRoot, defaultConfigFile), "utf8")}\n${restaurantsTablesYaml(restaurantsTable)}`)
      programArgs.push("--config", configFile)
    }
    // Beside the orders table (capturedTableOf's default path).
    const restaurantsLake = join(lake, "..", "restaurants")
    const restartDelays = rng.fork("restart-delays")
    const supervise = (program: ProgramName, name: string = program) =>
      new ProgramSupervisor(program, env, join(stateDir, "logs"), pidDir, () => restartDelays.int(200, 1500), name, programArgs)
    const producer = supervise("producer")
    const consumers = consumerNames.map((name) => supervise("consumer", name))
    supervisors.push(producer, ...consumers)
    for (const supervisor of supervisors) supervisor.start()
    // Warm-up, outside the generation window: a Node start takes seconds here, and kills and the
    // broker restart should land on a running stream. The producer creates the topics at start.
    const warming = Date.now()
    const warm = await Promise.all(supervisors.map((s) => s.waitForLog(startedLine[s.program], 90_000, abort)))
    throwIfAborted(abort)
    if (!warm.every(Boolean)) throw new Error(`the programs did not start within 90 s (logs in ${join(stateDir, "logs")})`)
    while (!(await topicExists(broker.brokers, topic))) {
      if (Date.now() - warming > 90_000) throw new Error(`the producer did not create ${topic} within 90 s`)
      await sleepOrAbort(300, abort)
    }
    if (logical) {
      // The snapshot holds exactly the orders inserted so far: the ledger says so (op snapshot).
      if (!(await producer.waitForLog(/"message":"snapshot published"/, 90_000, abort))) {
        throw new Error(`the producer did not publish its snapshot within 90 s (logs in ${join(stateDir, "logs")})`)
      }
    }
    log(`producer and ${consumers.length === 1 ? "consumer" : `${consumers.length} consumers`} running after ${seconds(Date.now() - warming)}`)

    // --- generation, with kills, a broker restart and garbage ---------------------------------------
    const durationMs = options.durationS * 1000
    const genStart = Date.now()
    const endGeneration = new AbortController()
    const generationTimer = setTimeout(() => endGeneration.abort(), durationMs)
    const injector = new GarbageInjector(broker.brokers, topic, genStart, rng.fork("garbage"), abort)
    const faults: FaultContext = { genStart, durationMs, abort, log, event }
    let brokerDownMs: Array<number> = []
    let s3DownMs: Array<number> = []
    let pgDownMs: Array<number> = []
    const outage = newOutageStats()
    const lifecycles = logical
      ? lifecycleWorkload(pool, {
        table,
        settings: { lifecycleSeconds: options.lifecycleSeconds, cancelRate: 0.2, updatesPerOrder: 0.5, deleteRate: 0.06 },
        seed: options.seed,
        share: 0.8,
        concurrency: 4
      }, ledger, rng.fork("lifecycles"), endGeneration.signal, abort)
      : undefined

    // The consumers share the kills (each one's restart also moves partitions through the group).
    const plannedKills: Record<string, number> = { producer: options.kills }
    consumers.forEach((c, i) => {
      plannedKills[c.name] = Math.floor(options.kills / consumers.length) + (i < options.kills % consumers.length ? 1 : 0)
    })
    let generated: GeneratorStats
    try {
      const activities = [
        runGenerator(pool, {
          table,
          ordersPerSecond: options.ordersPerSecond,
          steadyWorkers: 3,
          lateWorkers: 2,
          lateRollbackChance: 0.2,
          steadyRollbackChance: 0.03,
          tieGroupRows: [20, 150],
          ...(logical
            ? {
              placed: true,
              onCommitted: (orders: ReadonlyArray<{ readonly orderId: number; readonly amount: number }>) => {
                for (const order of orders) ledger.record(order.orderId, "insert")
                lifecycles?.track(orders)
              }
            }
            : {})
        }, rng.fork("generator"), endGeneration.signal, abort),
        // With logical capture the last restart of each program is armed with the point between its
        // two commits: the producer's between the broker's ack and the slot's confirmation, the
        // (first) consumer's between the history's commit and the orders'.
        killProgram(faults, producer, options.kills, options.crashPointChance, rng.fork("kills-producer"), injector, {
          all: crashPointsFor("producer", options.capture),
          ...(logical ? { last: "producer.after-publish" } : {})
        }, logical ? logicalProducerProgress : undefined),
        ...consumers.map((consumer, i) =>
          killProgram(faults, consumer, plannedKills[consumer.name]!, options.crashPointChance, rng.fork(i === 0 ? "kills-consumer" : `kills-${consumer.name}`), injector, {
            all: crashPointsFor("consumer", options.capture),
            ...(logical && i === 0 ? { last: "consumer.after-history-commit" } : {})
          })
        ),
        ...(lifecycles === undefined ? [] : [
          lifecycles.run(),
          multiStatementTransactions(pool, table, ledger, lifecycles.stats, outage, rng.fork("multi"), endGeneration.signal, abort,
            restaurants === undefined ? undefined : () => restaurants.inOrderTransaction()),
          ...(restaurants === undefined ? [] : [
            restaurants.run(pool, genStart, rng.fork("add-column").between(0.35, 0.55) * durationMs, outage, log, endGeneration.signal, abort)
          ]),
          bulkUpdate(pool, table, options.bulkRows, ledger, lifecycles.stats, outage,
            () => sleep(genStart + rng.fork("bulk").between(0.3, 0.6) * durationMs - Date.now(), abort), log, abort)
        ]),
        restarter === undefined ? Promise.resolve() : restartPostgres(faults, restarter, pgRestarts, rng.fork("postgres")).then((away) => {
          pgDownMs = away
        }),
        restartBroker(faults, broker, options.brokerRestarts, rng.fork("broker")).then((away) => {
          brokerDownMs = away
        }),
        s3 === undefined ? Promise.resolve() : restartS3(faults, s3, options.s3Restarts, rng.fork("s3")).then((away) => {
          s3DownMs = away
        }),
        injectGarbage(faults, injector, options.garbage, rng.fork("garbage-times"))
      ] as const
      // The first failure cancels the others (so the run ends now, not after its schedule).
      const cancelling = activities.map((activity) => (activity as Promise<unknown>).catch((error: unknown) => {
        failed.abort(error)
        throw error
      }))
      const results = await Promise.allSettled(cancelling)
      const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected")
      if (failure !== undefined) throw failure.reason
      generated = await (activities[0] as Promise<GeneratorStats>)
      await injector.settled()
    } finally {
      clearTimeout(generationTimer)
    }
    throwIfAborted(abort)
    const committed = await committedCount(pool, table)
    log(`generation done in ${seconds(Date.now() - genStart)}: ${committed} orders committed (${generated.lateCommits} late commits, ` +
      `${generated.tieGroups} tie groups, ${generated.rolledBackRows} rolled back), ${injector.injected.length} bad messages`)
    if (logical) {
      const l = lifecycles!.stats
      log(`changes committed: ${ledger.byOp.snapshot} snapshot, ${ledger.byOp.insert} inserts, ${ledger.byOp.update} updates, ${ledger.byOp.delete} deletes ` +
        `(lifecycles: ${l.tracked} orders, ${l.statusUpdates} status, ${l.amountUpdates} amount, ${l.deletes} deletes; ` +
        `${l.multiTransactions} multi-statement transactions; large transaction ${l.bulkRows} rows); ${committed} orders live`)
    }
    const restaurantsLive = restaurants === undefined ? 0 : await committedCount(pool, restaurantsTable)
    if (restaurants !== undefined) {
      const r = restaurants.ledger.byOp
      log(`${restaurantsTable}: ${r.snapshot} snapshot, ${r.insert} inserts, ${r.update} updates, ${r.delete} deletes committed ` +
        `(${restaurants.stats.withOrders} transactions with orders); ${restaurantsLive} rows live`)
    }
    const outages = { ...outage, interrupted: outage.interrupted + generated.outage.interrupted, unknownCommits: outage.unknownCommits + generated.outage.unknownCommits, unknownCommitted: outage.unknownCommitted + generated.outage.unknownCommitted }
    if (pgDownMs.length > 0) {
      log(`PostgreSQL outages: ${outages.interrupted} transactions cut before COMMIT, ${outages.unknownCommits} COMMITs unanswered (${outages.unknownCommitted} found committed)` +
        (logical ? `, ${lifecycles!.stats.retriedSteps} lifecycle steps run again, ${lifecycles!.stats.settledByReading} settled by reading the row` : ""))
    }
    event("generation-done", { committed, ...generated, rolledBackIds: undefined })

    // --- drain --------------------------------------------------------------------------------------
    const drain = await waitForDrain({
      pool, table, committed, lake, brokers: broker.brokers, topic, dlqTopic, injected: injector.injected, env,
      ...(logical ? { expectedHistoryRows: ledger.total } : {}),
      ...(restaurants === undefined ? {} : {
        tables: [{
          name: "restaurants",
          expectedRows: restaurantsLive,
          expectedHistoryRows: restaurants.ledger.total,
          counts: () => capturedTableCounts(restaurantsLake)
        }]
      })
    }, options.drainTimeoutS * 1000, abort, log)
    event("drain", { ...drain })

    // --- stop: SIGTERM, each must finish its batch and exit 0 ----------------------------------------
    const stops = await Promise.all(supervisors.map(async (supervisor) => {
      await supervisor.waitForLog(startedLine[supervisor.program], 30_000, abort)
      const stopped = await supervisor.stop(options.stopTimeoutS * 1000)
      const incarnation = stopped.incarnation
      const result: ProgramStop = {
        code: incarnation?.code ?? null,
        signal: incarnation?.signal ?? null,
        ms: stopped.ms,
        timedOut: stopped.timedOut,
        clean: incarnation !== null && !stopped.timedOut && incarnation.kind === "stopped"
      }
      return [supervisor.name, result] as const
    }))
    const stop: Partial<Record<string, ProgramStop>> = Object.fromEntries(stops)
    log(`stopped: ${stops.map(([p, s]) => `${p} exit ${s.code ?? s.signal} in ${seconds(s.ms)}`).join(", ")}`)
    event("stopped", stop)

    // --- compare ----------------------------------------------------------------------------------
    const comparison: LakeComparison = await compareLake(pool, table, lake, generated.rolledBackIds)
    const dlq: DeadLetterCheck = await checkDeadLetters(broker.brokers, dlqTopic, injector.injected)
    const history: HistoryCheck | null = logical ? await checkHistory(pool, table, lake, ledger) : null
    const restaurantsCheck: CapturedTableCheck | null = restaurants === undefined ? null : await checkCapturedTable(pool, {
      table: restaurantsTable,
      lakeName: "restaurants",
      path: restaurantsLake,
      ordersPath: lake,
      key: "restaurant_id",
      columns: restaurantColumns,
      partition: { column: "opened_at", value: "date" }
    }, restaurants.ledger)
    let diagnosis: string | null = null
    if (comparison.missing > 0) {
      const file = join(stateDir, "missing.json")
      const found = await diagnoseMissing(pool, table, broker.brokers, topic, comparison.missingIds, env)
      writeFileSync(file, JSON.stringify(found, null, 2))
      diagnosis = `${found.summary}; by transaction: ${found.groups.slice(0, 5).map((g) => `${g.orders} × "${g.label}" at ${g.created_at}`).join(", ")}${found.groups.length > 5 ? ", ..." : ""} (details in ${file})`
      log(diagnosis)
    }

    const killsOf = (supervisor: ProgramSupervisor): ProgramKills => {
      const kinds = supervisor.incarnations.map((i) => i.kind)
      const signal = kinds.filter((k) => k === "killed").length
      const crashPoints = kinds.filter((k) => k === "crash-point").length
      const hit = supervisor.incarnations.filter((i) => i.kind === "crash-point").map((i) => i.crashAt!.split(":")[0]!)
      return { total: signal + crashPoints, signal, crashPoints, starts: supervisor.incarnations.length, crashPointsHit: hit }
    }
    const kinds: Record<string, number> = {}
    for (const g of injector.injected) kinds[g.kind] = (kinds[g.kind] ?? 0) + 1
    const partial = {
      seed: options.seed,
      roll,
      pg: redactUrl(pgUrl),
      brokers: broker.brokers,
      durationS: options.durationS,
      capture: options.capture,
      stateDir,
      orders: {
        committed,
        generatorCommitted: generated.committedRows,
        rolledBackTransactions: generated.rolledBackTransactions,
        rolledBackRows: generated.rolledBackRows,
        lateCommits: generated.lateCommits,
        lateRows: generated.lateRows,
        tieGroups: generated.tieGroups,
        tieRows: generated.tieRows
      },
      kills: Object.fromEntries(supervisors.map((s) => [s.name, killsOf(s)])),
      unexpectedExits: supervisors.flatMap((s) =>
        s.incarnations.filter((i) => i.kind === "unexpected").map((i) => ({ program: s.name, ...i }))
      ),
      brokerRestarts: brokerDownMs.length,
      brokerDownMs,
      pgRestarts: pgDownMs.length,
      pgDownMs,
      pgRestartVia: options.pgRestartVia,
      pgRestartSkipped,
      outages,
      changes: logical
        ? { committed: { ...ledger.byOp }, total: ledger.total, ordersEver: ledger.perOrder.size, deletedOrders: ledger.deleted(), lifecycles: { ...lifecycles!.stats } }
        : null,
      history,
      secondTable: restaurants === undefined ? null : {
        table: restaurantsTable,
        committed: { ...restaurants.ledger.byOp },
        total: restaurants.ledger.total,
        rowsEver: restaurants.ledger.perOrder.size,
        workload: { ...restaurants.stats },
        check: restaurantsCheck
      },
      lakeStore: options.lake,
      s3Restarts: s3DownMs.length,
      s3DownMs,
      s3LostCommitAnswers: lossy?.lost() ?? 0,
      garbage: { injected: injector.injected.length, kinds, dlq },
      lake: comparison,
      drain,
      stop,
      wallMs: Date.now() - wallStart,
      injectedGarbage: injector.injected
    }
    const failures = failuresOf(partial, plannedKills, options.brokerRestarts, s3 === undefined ? 0 : options.s3Restarts, pgRestarts)
    if (diagnosis !== null) failures.push(diagnosis)
    if (options.checkTable !== undefined) {
      // Another engine's reading of the final table (Spark): the same rows and sum as PostgreSQL.
      const problems = await options.checkTable(lake, {
        rows: comparison.sourceRows,
        sum: comparison.sourceSum,
        ...(restaurantsCheck === null ? {} : { tables: [{ path: restaurantsLake, rows: restaurantsCheck.sourceRows }] })
      })
        .catch((error: unknown) => [`the table check failed: ${error instanceof Error ? error.message : String(error)}`])
      for (const problem of problems) {
        log(problem)
        failures.push(problem)
      }
    }
    if (!logical && committed !== generated.committedRows) {
      log(`note: the generator counted ${generated.committedRows} committed orders, PostgreSQL has ${committed}`)
    }
    passed = failures.length === 0
    const report: ChaosReport = {
      ...partial,
      ok: passed,
      failures,
      stateDir: passed ? null : stateDir,
      wallMs: Date.now() - wallStart
    }
    writeFileSync(join(stateDir, "report.json"), JSON.stringify(report, null, 2))
    return report
  } finally {
    // Whatever happened: no program or broker outlives the run.
    await Promise.all(supervisors.map((s) => s.forceStop().catch(() => undefined)))
    await broker?.stop(passed ? undefined : stateDir).catch((error: unknown) => log(`stopping the broker failed: ${String(error)}`))
    await lossy?.close().catch(() => undefined)
    await s3?.stop().catch((error: unknown) => log(`stopping the S3 server failed: ${String(error)}`))
    // The slot keeps WAL for as long as it exists: dropped whatever happened (the table may stay).
    await logicalCleanup?.().catch((error: unknown) => log(`dropping the slot and publication failed: ${String(error)}`))
    for (const [key, value] of Object.entries(savedEnv)) {
      if (value === undefined) delete process.env[key]
      else process.env[key] = value
    }
    if (pool !== undefined) {
      if (passed) await dropOrdersTable(pool, table).catch(() => undefined)
      if (passed && restaurantsCreated) await dropOrdersTable(pool, restaurantsTable).catch(() => undefined)
      await pool.end().catch(() => undefined)
    }
    // After the pool: with restarts through the proxy, the pool's connections (and the table's drop) go through it.
    await restarter?.close().catch(() => undefined)
    if (passed) rmSync(stateDir, { recursive: true, force: true })
    else log(`state kept in ${stateDir} (table "${table}" kept too)`)
  }
}
