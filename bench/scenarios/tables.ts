/**
 * Tables: the orders table captured alone against the orders table with two more tables beside it
 * (`tables:`, logical capture: one producer, one slot and publication for all, a topic and a Delta
 * table per table, one consumer process), in the same run, same machine.
 *
 *   backfill  N rows already in each table (orders: the backfill's orders; restaurants: 11 columns
 *             of mixed types; order_items: a composite key; bench/sideTables.ts). Each round runs
 *             orders alone, then the three, each with a fresh slot, publication, topics and lake:
 *             spawn → the first version of every table holding all its rows (numRecords over its
 *             live files, as the table follower reads them every `pollMs`). Rows/s over all tables,
 *             producer and consumer CPU and peak RSS; three ÷ orders alone per round, in time and
 *             in rows/s, median over the rounds.
 *   latency   a fixed total rate of changes (half inserts, half updates of rows inserted at least 1 s
 *             before; one transaction per tick: bench/tablesGenerator.ts) for a window, all on the orders table,
 *             then spread evenly over the three. Per change: the first version of its table whose
 *             position covers the change's Kafka message (one partition: next offset > its offset)
 *             − the COMMIT of its transaction (matched by the message's `xid` header). Per table
 *             p50/p95/p99, and each ÷ the orders table's when it was alone.
 *
 * Every slot and publication made is dropped after its run (and at cleanup); tables and topics at
 * cleanup. The result lists any slot left.
 */
import { dirname, join } from "node:path"
import { loadavg } from "node:os"
import { onCleanup } from "../cleanup.ts"
import { createTable, dropTable, withClient } from "../database.ts"
import { deleteTopicsLater, rawTopicConfig, topicHighWatermark } from "../kafka.ts"
import { createRollTopics, newRoll, type PipelinePrograms, type Roll, startPipelinePrograms } from "../pipeline.ts"
import { readMachineCpu } from "../procStats.ts"
import { createSideTableSql, insertSideRowsSql, type SideTable, sideTableName, sideTables } from "../sideTables.ts"
import type { Stack } from "../stack.ts"
import { type Distribution, distribution, median, perSecond, ratio, round, seconds, sleep, waitUntil } from "../stats.ts"
import { followTable, type TableFollower } from "../tableFollower.ts"
import type { GeneratedTable } from "../tablesGenerator.ts"
import { startTablesGenerator, type TablesGenerator } from "../tablesGeneratorClient.ts"
import { prepareBackfillTable } from "./backfill.ts"
import {
  assertAllRunning,
  dropSlotAndPublication,
  ensureLogical,
  logicalNames,
  type ProgramUse,
  readChanges,
  slotsLeft,
  use,
  visibleAt
} from "./capture.ts"
import { Kafka, logLevel } from "kafkajs"

/** The orders table alone, or with restaurants and order_items beside it. */
export type TablesSetup = "orders" | "three"

export interface TablesOptions {
  /** Rows in each table for the backfill. */
  readonly rows: number
  readonly days: number
  /** Rounds of the two backfills. */
  readonly repetitions: number
  readonly timeoutMs: number
  /** The table follower's period. */
  readonly pollMs: number
  /** Total changes/s (all tables together), for `durationMs`, in transactions every `tickMs`. */
  readonly latency: { readonly rate: number; readonly durationMs: number; readonly tickMs: number; readonly drainTimeoutMs: number }
}

export interface TablesBackfillRun {
  readonly round: number
  readonly setup: TablesSetup
  /** Rows in all tables together. */
  readonly rows: number
  /** Per table: its rows, when its Delta table first held them all (s after spawn), and the rows it holds at the end. */
  readonly tables: ReadonlyArray<{ readonly table: GeneratedTable; readonly rows: number; readonly doneS: number; readonly lakeRows: number; readonly versions: number }>
  /** Spawn → every table complete. */
  readonly endToEndSeconds: number
  readonly endToEndRowsPerS: number
  /** Spawn → the first version with rows, in any table (start-up: connections, slot, snapshot's first read, first commit). */
  readonly firstDataS: number | null
  /** Rows after the first version with data ÷ the time from it to the end: the rate without start-up. */
  readonly streamRowsPerS: number | null
  readonly producer: ProgramUse
  readonly consumer: ProgramUse
  readonly machineCpuCores: number
  readonly loadAverage: readonly [number, number]
}

export interface TablesLatencyTable {
  readonly table: GeneratedTable
  readonly inserted: number
  readonly updated: number
  /** Per change: the version covering its message seen − its transaction's COMMIT. */
  readonly latencyMs: Distribution
  /** Per change: its Kafka message's timestamp (set when the producer sends) − its COMMIT: the producer's part. */
  readonly captureMs: Distribution
  /** Changes committed whose message never reached a version of the table. */
  readonly missing: number
  readonly versions: number
  /** Rows in the Delta table at the end, and in PostgreSQL. */
  readonly lakeRows: number
  readonly sourceRows: number
  /** The consumer's `batch written` logs of this table during the step: messages per batch, how long each stayed open (linger), and the write (files, commit). */
  readonly batches: { readonly count: number; readonly meanMessages: number; readonly openMs: Distribution; readonly writeMs: Distribution }
  /** Change messages the producer flagged "more follows at once" (each keeps the table's batch open for backlog_linger_ms). */
  readonly backlogFlagged: number
}

export interface TablesLatencyRun {
  readonly setup: TablesSetup
  readonly rate: number
  readonly durationS: number
  readonly achievedRate: number
  readonly transactions: number
  readonly tables: ReadonlyArray<TablesLatencyTable>
  /** Every change of every table. */
  readonly allLatencyMs: Distribution
  /** From the last commit to the version covering the last change. */
  readonly drainS: number
  readonly producer: ProgramUse
  readonly consumer: ProgramUse
  readonly machineCpuCores: number
  readonly loadAverage: readonly [number, number]
}

export interface TablesSummary {
  readonly backfill: ReadonlyArray<{
    readonly setup: TablesSetup
    readonly runs: number
    readonly rows: number
    readonly endToEndSeconds: number
    readonly endToEndRowsPerS: number
    readonly streamRowsPerS: number
    /** Median over the rounds of this ÷ orders alone of the same round. */
    readonly timeVsOrders: number | null
    readonly rateVsOrders: number | null
    readonly streamRateVsOrders: number | null
    readonly producerCpuSeconds: number
    readonly producerPeakRssMiB: number
    readonly consumerCpuSeconds: number
    readonly consumerPeakRssMiB: number
  }>
  /** Per table of each latency run: its percentiles ÷ those of the orders table alone (> 1: slower). */
  readonly latency: ReadonlyArray<{
    readonly setup: TablesSetup
    readonly table: GeneratedTable
    readonly p50: number
    readonly p95: number
    readonly p99: number
    readonly vsOrdersAlone: { readonly p50: number | null; readonly p95: number | null; readonly p99: number | null }
  }>
}

export interface TablesResult {
  readonly rows: number
  readonly loadSeconds: number
  readonly repetitions: number
  readonly followMs: number
  readonly backfill: ReadonlyArray<TablesBackfillRun>
  readonly latency: ReadonlyArray<TablesLatencyRun>
  readonly summary: TablesSummary
  readonly slots: { readonly created: ReadonlyArray<string>; readonly left: ReadonlyArray<string> }
}

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

const load1 = () => round(loadavg()[0] ?? 0, 2)

const tablesOf = (setup: TablesSetup): ReadonlyArray<GeneratedTable> => (setup === "orders" ? ["orders"] : ["orders", ...sideTables])

const createdSlots: Array<string> = []

interface Lane {
  readonly table: GeneratedTable
  readonly topic: string
  readonly follower: TableFollower
}

/** The topic and Delta table the pipeline gives each table (capturedTables.ts: the orders topic and path with `orders` replaced). */
const laneNames = (roll: Roll, table: GeneratedTable) =>
  table === "orders"
    ? { topic: roll.topic, lake: roll.lake }
    : { topic: roll.topic.replace(/orders(?!.*orders)/, table), lake: join(dirname(roll.lake), table) }

const createSideTopics = async (stack: Stack, topics: ReadonlyArray<string>) => {
  deleteTopicsLater(stack.kafkaBrokers, topics)
  const admin = new Kafka({ clientId: "food-orders-bench", brokers: stack.kafkaBrokers.split(","), logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    await admin.createTopics({ waitForLeaders: true, topics: topics.map((topic) => ({ topic, numPartitions: 1, configEntries: rawTopicConfig })) })
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

/** Topics created up front (one partition each, as capture.ts does for the orders), followers on every table, the programs started. */
const startSetup = async (stack: Stack, roll: Roll, setup: TablesSetup, label: string, options: TablesOptions, interval: number | null) => {
  const tables = tablesOf(setup)
  await createRollTopics(stack, roll, 1)
  const side = tables.filter((t): t is SideTable => t !== "orders")
  if (side.length > 0) await createSideTopics(stack, side.map((t) => laneNames(roll, t).topic))
  const lanes: Array<Lane> = []
  for (const table of tables) {
    const { topic, lake } = laneNames(roll, table)
    lanes.push({ table, topic, follower: await followTable(lake, { topic, pollMs: options.pollMs }) })
  }
  const names = logicalNames(stack, roll)
  createdSlots.push(names.slot)
  const programs = startPipelinePrograms(stack, roll, {
    label,
    interval,
    producer: "ours",
    consumers: 1,
    extraEnv: {
      CAPTURE_MODE: "logical",
      KAFKA_PARTITIONS: "1",
      CAPTURE_SLOT: names.slot,
      CAPTURE_PUBLICATION: names.publication,
      ...(side.length === 0 ? {} : { TABLES: side.map((t) => sideTableName(roll.table, t)).join(",") })
    }
  })
  const stop = async () => {
    await programs.stop()
    for (const lane of lanes) await lane.follower.stop()
    await dropSlotAndPublication(stack.pgUrl, names.slot, names.publication)
  }
  return { lanes, programs, stop }
}

const sourceRows = (pgUrl: string, name: string) =>
  withClient(pgUrl, async (client) => Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM "${name}"`)).rows[0]!.n))

// ---------------------------------------------------------------------------------------------
// Backfill

/** Loads `rows` rows into each side table named after the orders table (dropped at cleanup). */
const loadSideTables = async (pgUrl: string, ordersTable: string, rows: number) => {
  const chunk = 100_000
  for (const table of sideTables) {
    const name = sideTableName(ordersTable, table)
    await withClient(pgUrl, async (client) => {
      await client.query(createSideTableSql(name, table))
      onCleanup(`drop table ${name}`, () => dropTable(pgUrl, name))
      for (let first = 1; first <= rows; first += chunk) await client.query(insertSideRowsSql(name, table), [first, Math.min(rows, first + chunk - 1)])
      await client.query(`ANALYZE "${name}"`)
    })
  }
}

const runTablesBackfill = async (
  roundNo: number,
  stack: Stack,
  ordersTable: string,
  setup: TablesSetup,
  options: TablesOptions,
  interval: number | null
): Promise<TablesBackfillRun> => {
  const roll = newRoll(stack, `tb${setup === "orders" ? "1" : "3"}`, ordersTable)
  const machineBefore = readMachineCpu()
  const loadBefore = load1()
  const { lanes, programs, stop } = await startSetup(stack, roll, setup, `tables-backfill-${setup}`, options, interval)
  const t0 = programs.startedAt
  try {
    const done = await waitUntil(() => {
      assertAllRunning(programs)
      return lanes.every((l) => l.follower.rows() >= options.rows)
    }, options.timeoutMs, 50)
    if (!done) {
      throw new Error(`tables backfill ${setup}: within ${options.timeoutMs / 1000} s only ` +
        lanes.map((l) => `${l.follower.rows()} of ${options.rows} rows in ${l.table}`).join(", "))
    }
    const doneAt = lanes.map((l) => l.follower.versions.find((v) => v.rows >= options.rows)!.seenAt)
    const tEnd = Math.max(...doneAt)
    const machineAfter = readMachineCpu()
    const machineWallS = (Date.now() - t0) / 1000
    const loadAfter = load1()
    const producer = use(programs.producer, t0, tEnd)
    const consumer = use(programs.consumers[0]!, t0, tEnd)
    await programs.stop()
    for (const lane of lanes) await lane.follower.poll()
    const rows = options.rows * lanes.length
    const firstData = Math.min(...lanes.map((l) => l.follower.versions.find((v) => v.rows > 0)?.seenAt ?? Infinity))
    // Rows already in some table at that first sighting (usually one batch of one table).
    const rowsAtFirst = lanes.reduce((sum, l) => sum + ([...l.follower.versions].reverse().find((v) => v.seenAt <= firstData)?.rows ?? 0), 0)
    return {
      round: roundNo,
      setup,
      rows,
      tables: lanes.map((l, i) => ({
        table: l.table,
        rows: options.rows,
        doneS: seconds(doneAt[i]! - t0),
        lakeRows: l.follower.rows(),
        versions: l.follower.versions.length
      })),
      endToEndSeconds: seconds(tEnd - t0),
      endToEndRowsPerS: perSecond(rows, tEnd - t0),
      firstDataS: Number.isFinite(firstData) ? seconds(firstData - t0) : null,
      streamRowsPerS: Number.isFinite(firstData) && tEnd > firstData ? perSecond(rows - rowsAtFirst, tEnd - firstData) : null,
      producer,
      consumer,
      machineCpuCores: round((machineAfter.busy - machineBefore.busy) / machineWallS, 2),
      loadAverage: [loadBefore, loadAfter]
    }
  } finally {
    await stop()
  }
}

// ---------------------------------------------------------------------------------------------
// Latency

/**
 * Every table holds every row inserted (so its last transaction's inserts are in: the producer got
 * that far), and covers its topic's end, which stayed put between two looks (the rest of that
 * transaction, published with it, is in too).
 */
const drain = async (stack: Stack, lanes: ReadonlyArray<Lane>, programs: PipelinePrograms, generator: TablesGenerator, timeoutMs: number) => {
  let previous: Array<number> = []
  return waitUntil(async () => {
    assertAllRunning(programs)
    if (!lanes.every((l) => l.follower.rows() >= generator.inserted(l.table))) return false
    const ends = await Promise.all(lanes.map((l) => topicHighWatermark(stack.kafkaBrokers, l.topic)))
    const stable = ends.length === previous.length && ends.every((e, i) => e === previous[i])
    previous = ends
    return stable && lanes.every((l, i) => l.follower.messages() >= ends[i]!)
  }, timeoutMs, 250)
}

const runTablesLatency = async (stack: Stack, setup: TablesSetup, options: TablesOptions, interval: number | null): Promise<TablesLatencyRun> => {
  const roll = newRoll(stack, `tl${setup === "orders" ? "1" : "3"}`)
  await createTable(stack.pgUrl, roll.table, true)
  const tables = tablesOf(setup)
  for (const table of tables) {
    if (table === "orders") continue
    const name = sideTableName(roll.table, table)
    await withClient(stack.pgUrl, (client) => client.query(createSideTableSql(name, table)))
    onCleanup(`drop table ${name}`, () => dropTable(stack.pgUrl, name))
  }
  const { lanes, programs, stop } = await startSetup(stack, roll, setup, `tables-latency-${setup}`, options, interval)
  let generator: TablesGenerator | null = null
  try {
    generator = await startTablesGenerator(stack.pgUrl, roll.table)
    const g = generator
    // Warm-up on every table: connections, the slot, JIT, each table's consumer loop.
    await g.run(`tables-warm-up-${setup}`, Math.max(60, tables.length * 20), 1_000, options.latency.tickMs, tables)
    const warm = await waitUntil(() => {
      assertAllRunning(programs)
      return lanes.every((l) => l.follower.rows() >= g.inserted(l.table))
    }, 120_000, 50)
    if (!warm) throw new Error(`tables latency ${setup}: the warm-up rows did not reach every table within 120 s`)
    programs.producer.resetPeak()
    programs.consumers[0]!.resetPeak()
    const label = `tables-${setup}-${options.latency.rate}`
    const firstCommit = g.commits.length
    const machineBefore = readMachineCpu()
    const loadBefore = load1()
    const startedAt = Date.now()
    const done = await g.run(label, options.latency.rate, options.latency.durationMs, options.latency.tickMs, tables)
    const commits = g.commits.slice(firstCommit).filter((c) => c.label === label)
    const drained = await drain(stack, lanes, programs, g, options.latency.drainTimeoutMs)
    if (!drained) say(`tables latency ${setup}: not drained after ${options.latency.drainTimeoutMs / 1000} s`)
    const drainedAt = Date.now()
    const machineAfter = readMachineCpu()
    const loadAfter = load1()
    const producer = use(programs.producer, startedAt, drainedAt)
    const consumer = use(programs.consumers[0]!, startedAt, drainedAt)
    const written = programs.consumers[0]!.logs.filter((l) => l.message === "batch written" && l.receivedAt >= startedAt && l.receivedAt <= drainedAt)
    const batchesOf = (table: GeneratedTable) => {
      // The orders' loop logs without a table annotation; the others name theirs (schema.name).
      const mine = written.filter((l) => {
        const name = l.annotations["table"]
        return table === "orders" ? name === undefined : typeof name === "string" && name.endsWith(`_${table}`)
      })
      return {
        count: mine.length,
        meanMessages: mine.length === 0 ? 0 : Math.round(mine.reduce((sum, l) => sum + Number(l.annotations["messages"] ?? 0), 0) / mine.length),
        openMs: distribution(mine.map((l) => Number(l.annotations["open_ms"] ?? NaN)).filter(Number.isFinite)),
        writeMs: distribution(mine.map((l) => Number(l.annotations["ms"] ?? NaN)).filter(Number.isFinite))
      }
    }
    await g.stop()
    generator = null
    await programs.stop()
    for (const lane of lanes) await lane.follower.poll()

    const committedAt = new Map(commits.map((c) => [c.xid, c.t]))
    const lastCommitAt = Math.max(...commits.map((c) => c.t))
    let lastVisible = startedAt
    const all: Array<number> = []
    const perTable: Array<TablesLatencyTable> = []
    for (const lane of lanes) {
      const counts = done.changes[lane.table] ?? { inserted: 0, updated: 0 }
      const latency: Array<number> = []
      let backlogFlagged = 0
      const capture: Array<number> = []
      for (const m of await readChanges(stack.kafkaBrokers, lane.topic)) {
        if (m.op !== "insert" && m.op !== "update") continue
        const committed = m.xid === null ? undefined : committedAt.get(m.xid)
        const visible = visibleAt(lane.follower, m.offset)
        if (committed === undefined || visible === null) continue
        if (m.backlog) backlogFlagged += 1
        capture.push(m.timestamp - committed)
        latency.push(visible - committed)
        lastVisible = Math.max(lastVisible, visible)
      }
      all.push(...latency)
      perTable.push({
        table: lane.table,
        inserted: counts.inserted,
        updated: counts.updated,
        latencyMs: distribution(latency),
        captureMs: distribution(capture),
        missing: counts.inserted + counts.updated - latency.length,
        versions: lane.follower.versions.filter((v) => v.seenAt >= startedAt).length,
        lakeRows: lane.follower.rows(),
        sourceRows: await sourceRows(stack.pgUrl, lane.table === "orders" ? roll.table : sideTableName(roll.table, lane.table)),
        batches: batchesOf(lane.table),
        backlogFlagged
      })
    }
    return {
      setup,
      rate: options.latency.rate,
      durationS: seconds(options.latency.durationMs, 1),
      achievedRate: done.achievedRate,
      transactions: done.transactions,
      tables: perTable,
      allLatencyMs: distribution(all),
      drainS: round((lastVisible - lastCommitAt) / 1000, 2),
      producer,
      consumer,
      machineCpuCores: round((machineAfter.busy - machineBefore.busy) / ((drainedAt - startedAt) / 1000), 2),
      loadAverage: [loadBefore, loadAfter]
    }
  } finally {
    await generator?.stop().catch(() => undefined)
    await stop()
    for (const table of tables) await dropTable(stack.pgUrl, table === "orders" ? roll.table : sideTableName(roll.table, table))
  }
}

// ---------------------------------------------------------------------------------------------

export const summariseTables = (backfill: ReadonlyArray<TablesBackfillRun>, latency: ReadonlyArray<TablesLatencyRun>): TablesSummary => ({
  backfill: (["orders", "three"] as const).flatMap((setup) => {
    const mine = backfill.filter((r) => r.setup === setup)
    if (mine.length === 0) return []
    const m = (f: (r: TablesBackfillRun) => number | null) => median(mine.map((r) => f(r) ?? NaN))
    const vs = (f: (r: TablesBackfillRun) => number) => {
      const ratios = mine.flatMap((r) => {
        const base = backfill.find((b) => b.round === r.round && b.setup === "orders")
        return base === undefined ? [] : [f(r) / f(base)]
      })
      return ratios.length === 0 ? null : round(median(ratios), 2)
    }
    return [{
      setup,
      runs: mine.length,
      rows: mine[0]!.rows,
      endToEndSeconds: round(m((r) => r.endToEndSeconds), 2),
      endToEndRowsPerS: Math.round(m((r) => r.endToEndRowsPerS)),
      streamRowsPerS: Math.round(m((r) => r.streamRowsPerS)),
      timeVsOrders: vs((r) => r.endToEndSeconds),
      rateVsOrders: vs((r) => r.endToEndRowsPerS),
      streamRateVsOrders: vs((r) => r.streamRowsPerS ?? NaN),
      producerCpuSeconds: round(m((r) => r.producer.cpuSeconds), 1),
      producerPeakRssMiB: round(m((r) => r.producer.peakRssMiB), 1),
      consumerCpuSeconds: round(m((r) => r.consumer.cpuSeconds), 1),
      consumerPeakRssMiB: round(m((r) => r.consumer.peakRssMiB), 1)
    }]
  }),
  latency: (() => {
    const alone = latency.find((r) => r.setup === "orders")?.tables.find((t) => t.table === "orders")?.latencyMs
    return latency.flatMap((run) =>
      run.tables.map((t) => ({
        setup: run.setup,
        table: t.table,
        p50: t.latencyMs.p50,
        p95: t.latencyMs.p95,
        p99: t.latencyMs.p99,
        vsOrdersAlone: {
          p50: alone === undefined ? null : ratio(t.latencyMs.p50, alone.p50),
          p95: alone === undefined ? null : ratio(t.latencyMs.p95, alone.p95),
          p99: alone === undefined ? null : ratio(t.latencyMs.p99, alone.p99)
        }
      }))
    )
  })()
})

export const runTables = async (stack: Stack, options: TablesOptions, interval: number | null): Promise<TablesResult> => {
  await ensureLogical(stack)
  const latency: Array<TablesLatencyRun> = []
  for (const setup of ["orders", "three"] as const) {
    say(`tables latency: ${options.latency.rate} changes/s for ${options.latency.durationMs / 1000} s on ${tablesOf(setup).join(" + ")}`)
    const run = await runTablesLatency(stack, setup, options, interval)
    latency.push(run)
    say(`tables latency ${setup}: ` + run.tables.map((t) => `${t.table} p50 ${t.latencyMs.p50} / p95 ${t.latencyMs.p95} / p99 ${t.latencyMs.p99} ms (capture p50 ${t.captureMs.p50} ms; missing ${t.missing}; ` +
      `${t.batches.count} batches of ${t.batches.meanMessages}, open p50 ${t.batches.openMs.p50} ms, write p50 ${t.batches.writeMs.p50} / p99 ${t.batches.writeMs.p99} ms; backlog-flagged ${t.backlogFlagged})`).join("; ") +
      `; producer ${run.producer.cpuCores} cores, consumer ${run.consumer.cpuCores} cores`)
    await sleep(1_000)
  }
  const prepared = await prepareBackfillTable(stack, { rows: options.rows, days: options.days, interval, timeoutMs: options.timeoutMs })
  const ordersTable = prepared.roll.table
  const started = Date.now()
  await loadSideTables(stack.pgUrl, ordersTable, options.rows)
  const loadSeconds = prepared.loadSeconds + (Date.now() - started) / 1000
  const backfill: Array<TablesBackfillRun> = []
  try {
    for (let roundNo = 1; roundNo <= options.repetitions; roundNo++) {
      for (const setup of ["orders", "three"] as const) {
        say(`tables backfill ${roundNo}/${options.repetitions}: ${options.rows} rows in each of ${tablesOf(setup).join(" + ")}`)
        const run = await runTablesBackfill(roundNo, stack, ordersTable, setup, options, interval)
        backfill.push(run)
        say(`tables backfill ${setup}: ${run.endToEndRowsPerS} rows/s over ${run.rows} rows (${run.endToEndSeconds} s: ` +
          run.tables.map((t) => `${t.table} at ${t.doneS} s`).join(", ") + `); producer ${run.producer.cpuSeconds} s CPU, ${run.producer.peakRssMiB} MiB; ` +
          `consumer ${run.consumer.cpuSeconds} s CPU, ${run.consumer.peakRssMiB} MiB`)
        await sleep(1_000)
      }
    }
  } finally {
    await dropTable(stack.pgUrl, ordersTable)
    for (const table of sideTables) await dropTable(stack.pgUrl, sideTableName(ordersTable, table))
  }
  return {
    rows: options.rows,
    loadSeconds: round(loadSeconds, 1),
    repetitions: options.repetitions,
    followMs: options.pollMs,
    backfill,
    latency,
    summary: summariseTables(backfill, latency),
    slots: { created: [...createdSlots], left: await slotsLeft(stack.pgUrl, createdSlots) }
  }
}
