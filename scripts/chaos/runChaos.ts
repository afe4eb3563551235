import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type pg from "pg"
import { uniqueName } from "../../test/support/names.ts"
import { pipelineEnv } from "../../test/support/pipelineProcess.ts"
import { type ChaosBroker, startChaosBroker } from "./broker.ts"
import { compareLake, type LakeComparison } from "./compare.ts"
import { committedCount, createOrdersTable, dropOrdersTable, openPool, redactUrl, resolvePgUrl } from "./database.ts"
import { diagnoseMissing } from "./diagnose.ts"
import { checkDeadLetters, type DeadLetterCheck, GarbageInjector, topicExists } from "./garbage.ts"
import { waitForDrain } from "./drain.ts"
import { type FaultContext, injectGarbage, killProgram, restartBroker } from "./faults.ts"
import { type GeneratorStats, runGenerator } from "./generator.ts"
import type { ChaosOptions } from "./options.ts"
import { seededRandom } from "./random.ts"
import { type ChaosReport, failuresOf, type ProgramKills, type ProgramStop } from "./report.ts"
import { type ProgramName, ProgramSupervisor } from "./supervisor.ts"
import { seconds, sleepOrAbort, throwIfAborted } from "./timing.ts"
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
  const roll = uniqueName("chaos")
  const table = `${roll}_orders`
  const topic = `${roll}_food_orders_raw`
  const dlqTopic = `${roll}_food_orders_dlq`
  const stateDir = mkdtempSync(join(tmpdir(), "fop-chaos-"))
  const eventsFile = join(stateDir, "events.jsonl")
  const event = (what: string, details: Record<string, unknown> = {}) =>
    appendFileSync(eventsFile, JSON.stringify({ at_ms: Date.now() - wallStart, event: what, ...details }) + "\n")

  let pool: pg.Pool | undefined
  let broker: ChaosBroker | undefined
  const supervisors: Array<ProgramSupervisor> = []
  let passed = false
  try {
    const { pgUrl, source } = await resolvePgUrl(options.pgUrl)
    pool = await openPool(pgUrl, 8)
    await createOrdersTable(pool, table)
    log(`roll ${roll}, seed ${options.seed}, state ${stateDir}; PostgreSQL ${redactUrl(pgUrl)} (${source})`)
    throwIfAborted(abort)

    const brokerStarting = Date.now()
    broker = await startChaosBroker()
    log(`own Kafka broker at ${broker.brokers} (pid ${broker.pid()}), up in ${seconds(Date.now() - brokerStarting)}`)
    event("broker-started", { brokers: broker.brokers, pid: broker.pid() })
    const pidDir = join(stateDir, "pids")
    spawnWatchdog({
      ownerPid: process.pid,
      pidFiles: [broker.files.pidFile, join(pidDir, "producer.pid"), join(pidDir, "consumer.pid")],
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
        CONSUMER_MAX_BATCH_MESSAGES: String(options.consumerMaxBatchMessages)
      }
    })
    const lake = env["DATALAKE_PATH"]!
    const restartDelays = rng.fork("restart-delays")
    const supervise = (program: ProgramName) =>
      new ProgramSupervisor(program, env, join(stateDir, "logs"), pidDir, () => restartDelays.int(200, 1500))
    const producer = supervise("producer")
    const consumer = supervise("consumer")
    supervisors.push(producer, consumer)
    producer.start()
    consumer.start()
    // Warm-up, outside the generation window: a Node start takes seconds here, and kills and the
    // broker restart should land on a running stream. The producer creates the topics at start.
    const warming = Date.now()
    const warm = await Promise.all([
      producer.waitForLog(startedLine.producer, 90_000, abort),
      consumer.waitForLog(startedLine.consumer, 90_000, abort)
    ])
    throwIfAborted(abort)
    if (!warm.every(Boolean)) throw new Error(`the programs did not start within 90 s (logs in ${join(stateDir, "logs")})`)
    while (!(await topicExists(broker.brokers, topic))) {
      if (Date.now() - warming > 90_000) throw new Error(`the producer did not create ${topic} within 90 s`)
      await sleepOrAbort(300, abort)
    }
    log(`producer and consumer running after ${seconds(Date.now() - warming)}`)

    // --- generation, with kills, a broker restart and garbage ---------------------------------------
    const durationMs = options.durationS * 1000
    const genStart = Date.now()
    const endGeneration = new AbortController()
    const generationTimer = setTimeout(() => endGeneration.abort(), durationMs)
    const injector = new GarbageInjector(broker.brokers, topic, genStart, rng.fork("garbage"), abort)
    const faults: FaultContext = { genStart, durationMs, abort, log, event }
    let brokerDownMs: Array<number> = []
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
          tieGroupRows: [20, 150]
        }, rng.fork("generator"), endGeneration.signal, abort),
        killProgram(faults, producer, options.kills, options.crashPointChance, rng.fork("kills-producer"), injector),
        killProgram(faults, consumer, options.kills, options.crashPointChance, rng.fork("kills-consumer"), injector),
        restartBroker(faults, broker, options.brokerRestarts, rng.fork("broker")).then((away) => {
          brokerDownMs = away
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
      generated = await activities[0]
      await injector.settled()
    } finally {
      clearTimeout(generationTimer)
    }
    throwIfAborted(abort)
    const committed = await committedCount(pool, table)
    log(`generation done in ${seconds(Date.now() - genStart)}: ${committed} orders committed (${generated.lateCommits} late commits, ` +
      `${generated.tieGroups} tie groups, ${generated.rolledBackRows} rolled back), ${injector.injected.length} bad messages`)
    event("generation-done", { committed, ...generated, rolledBackIds: undefined })

    // --- drain --------------------------------------------------------------------------------------
    const drain = await waitForDrain({
      pool, table, committed, lake, brokers: broker.brokers, topic, dlqTopic, injected: injector.injected, env
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
      return [supervisor.program, result] as const
    }))
    const stop = Object.fromEntries(stops) as Partial<Record<ProgramName, ProgramStop>>
    log(`stopped: ${stops.map(([p, s]) => `${p} exit ${s.code ?? s.signal} in ${seconds(s.ms)}`).join(", ")}`)
    event("stopped", stop)

    // --- compare ----------------------------------------------------------------------------------
    const comparison: LakeComparison = await compareLake(pool, table, lake, generated.rolledBackIds)
    const dlq: DeadLetterCheck = await checkDeadLetters(broker.brokers, dlqTopic, injector.injected)
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
      return { total: signal + crashPoints, signal, crashPoints, starts: supervisor.incarnations.length }
    }
    const kinds: Record<string, number> = {}
    for (const g of injector.injected) kinds[g.kind] = (kinds[g.kind] ?? 0) + 1
    const partial = {
      seed: options.seed,
      roll,
      pg: redactUrl(pgUrl),
      brokers: broker.brokers,
      durationS: options.durationS,
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
      kills: { producer: killsOf(producer), consumer: killsOf(consumer) },
      unexpectedExits: supervisors.flatMap((s) =>
        s.incarnations.filter((i) => i.kind === "unexpected").map((i) => ({ program: s.program, ...i }))
      ),
      brokerRestarts: brokerDownMs.length,
      brokerDownMs,
      garbage: { injected: injector.injected.length, kinds, dlq },
      lake: comparison,
      drain,
      stop,
      wallMs: Date.now() - wallStart,
      injectedGarbage: injector.injected
    }
    const failures = failuresOf(partial, options.kills, options.brokerRestarts)
    if (diagnosis !== null) failures.push(diagnosis)
    if (options.checkTable !== undefined) {
      // Another engine's reading of the final table (Spark): the same rows and sum as PostgreSQL.
      const problems = await options.checkTable(lake, { rows: comparison.sourceRows, sum: comparison.sourceSum })
        .catch((error: unknown) => [`the table check failed: ${error instanceof Error ? error.message : String(error)}`])
      for (const problem of problems) {
        log(problem)
        failures.push(problem)
      }
    }
    if (committed !== generated.committedRows) {
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
    if (pool !== undefined) {
      if (passed) await dropOrdersTable(pool, table).catch(() => undefined)
      await pool.end().catch(() => undefined)
    }
    if (passed) rmSync(stateDir, { recursive: true, force: true })
    else log(`state kept in ${stateDir} (table "${table}" kept too)`)
  }
}
