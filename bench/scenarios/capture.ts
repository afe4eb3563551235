/**
 * Capture: `capture.mode poll` (the reference design's query for new rows, woken by NOTIFY) against
 * `capture.mode logical` (pgoutput through a replication slot), in the same run, same machine.
 *
 *   latency   1,000 orders/s for a window on a fresh table, each mode twice: inserts only, and an
 *             update-heavy mix (every order updated 1 s and 2 s after its INSERT committed, every
 *             third again after 3 s: 2.33 updates per order, bench/generator.ts). Per change: the
 *             first version of the orders table whose position covers the change's Kafka message,
 *             as the table follower saw it (every `pollMs`), − the COMMIT of its transaction as the
 *             generator saw it return. That version is the one that holds the order's new state
 *             (logical: the copy-on-write of its file commits with the position). Poll captures
 *             inserts only: in the mix, poll is measured on its inserts and its updates are never
 *             captured (the lake keeps each order as inserted; the state check shows it).
 *   backfill  N orders already in the table when the producer starts: poll's backfill against
 *             logical's initial snapshot (CAPTURE_SNAPSHOT_CHUNK rows per read), each with a fresh
 *             topic, lake and (logical) slot and publication, alternating per round; spawn → the
 *             version covering all N. Median of the rounds, and logical ÷ poll per round.
 *
 * Both: producer CPU and peak RSS (VmHWM), consumer CPU, and PostgreSQL's CPU: the server processes
 * serving the producer (pg_stat_activity: application_name food-orders-producer, and the walsender),
 * from /proc/<pid>/stat. The producer runs as `npm run producer` runs it (scripts/programs.ts: a heap
 * cap), plus `producerNodeArgs` if any. Every slot and publication made here is dropped after its run (and at cleanup);
 * the result lists any left.
 */
import { Effect } from "effect"
import { Kafka, logLevel } from "kafkajs"
import pg from "pg"
import { randomBytes } from "node:crypto"
import { loadavg } from "node:os"
import { programNodeOptions } from "../../scripts/programs.ts"
import { ensureLogicalWal } from "../../scripts/stack/logicalWal.ts"
import { readLakeVersion } from "../../src/analytics/lakeQuery.ts"
import { backlogHeader } from "../../src/services/OrderStream.ts"
import { onCleanup } from "../cleanup.ts"
import { createTable, dropTable } from "../database.ts"
import { startGenerator } from "../generatorClient.ts"
import type { DuckDb } from "../lakeWatcher.ts"
import { createRollTopics, newRoll, type PipelinePrograms, type Roll, startPipelinePrograms } from "../pipeline.ts"
import { readMachineCpu, sampleUsage } from "../procStats.ts"
import type { Stack } from "../stack.ts"
import { type Distribution, distribution, median, perSecond, ratio, round, seconds, sleep, waitUntil } from "../stats.ts"
import { followTable, stderrLogger, type TableFollower } from "../tableFollower.ts"
import { prepareBackfillTable } from "./backfill.ts"

export type CaptureMode = "poll" | "logical"
export type CaptureLoad = "inserts" | "mix"

export interface CaptureOptions {
  readonly rows: number
  readonly days: number
  /** Rounds of the two backfills (poll, logical). */
  readonly repetitions: number
  readonly timeoutMs: number
  /** CAPTURE_SNAPSHOT_CHUNK; null keeps the configuration's (10,000). */
  readonly snapshotChunk: number | null
  readonly latency: { readonly rate: number; readonly durationMs: number; readonly tickMs: number; readonly drainTimeoutMs: number }
  /** The table follower's period. */
  readonly pollMs: number
  /** Node options for the producer in both modes beyond its own (scripts/programs.ts). */
  readonly producerNodeArgs: ReadonlyArray<string>
  /** The latency loads to run (smoke: the mix alone, which measures inserts and updates). */
  readonly loads: ReadonlyArray<CaptureLoad>
  /** Only these parts (`poll/inserts`, `logical/mix`, ..., `backfill`; --capture-runs), or all when null: for a closer look at one. */
  readonly only?: ReadonlyArray<string> | null
}

export interface PostgresCpu {
  readonly cpuSeconds: number
  readonly cpuCores: number
  /** The server processes that served the producer: pid, backend_type, CPU seconds in the window. */
  readonly backends: ReadonlyArray<{ readonly pid: number; readonly type: string; readonly cpuSeconds: number }>
}

export interface ProgramUse {
  readonly cpuSeconds: number
  readonly cpuCores: number
  readonly peakRssMiB: number | null
}

/** The orders table at the end against the source table: rows, distinct ids, sum(amount), DELIVERED orders. */
export interface StateCheck {
  readonly lake: { readonly rows: number; readonly distinctIds: number; readonly amount: number; readonly delivered: number }
  readonly source: { readonly rows: number; readonly distinctIds: number; readonly amount: number; readonly delivered: number }
  readonly equal: boolean
}

export interface CaptureLatencyRun {
  readonly mode: CaptureMode
  readonly load: CaptureLoad
  readonly rate: number
  readonly durationS: number
  readonly inserted: number
  readonly achievedRate: number
  /** Rows updated (the mix), and in how many transactions. */
  readonly updated: number
  readonly updateTransactions: number
  /** Per INSERTed order: the version covering its message − its COMMIT. */
  readonly insertLatencyMs: Distribution
  /** Per updated row captured (logical): the version covering the update's message − the UPDATE's COMMIT. Null when none was captured. */
  readonly updateLatencyMs: Distribution | null
  /** Per captured change (inserts and updates): its Kafka message's timestamp (set when the producer sends) − its COMMIT: the producer's part. */
  readonly captureMs: Distribution
  /** Per captured change: the version covering it seen − its Kafka timestamp: broker, consumer, table commit. */
  readonly deliveryMs: Distribution
  readonly missingInserts: number
  /** Updated rows whose change never reached the table (logical); poll never captures updates: all of them. */
  readonly missingUpdates: number
  readonly messages: number
  readonly versions: number
  /** From the last commit of the step to the version covering its last change. */
  readonly drainS: number
  readonly producer: ProgramUse
  readonly consumer: ProgramUse
  /** The consumer's `batch written` logs during the step: how many, messages per batch, and the time inside each (`ms`: files, commit). */
  readonly batches: {
    readonly count: number
    readonly meanMessages: number
    /** How long each batch stayed open (`open_ms`: linger_ms, or backlog_linger_ms while a message says more follows). */
    readonly openMs: Distribution
    readonly writeMs: Distribution
  }
  /** Messages of the step whose producer flagged "more follows at once" (the backlog header): each keeps the consumer's batch open for backlog_linger_ms. */
  readonly backlogFlagged: number
  readonly postgres: PostgresCpu
  readonly machineCpuCores: number
  /** The machine's 1-minute load average when the measurement started and ended (another run may share the machine). */
  readonly loadAverage: readonly [number, number]
  readonly state: StateCheck
}

export interface CaptureBackfillRun {
  readonly round: number
  readonly mode: CaptureMode
  readonly rows: number
  /** Spawn of the programs until a version covering every order was first seen. */
  readonly endToEndSeconds: number
  readonly endToEndRowsPerS: number
  /** Spawn until the first version with data. */
  readonly firstDataS: number | null
  /** From the first version with data to the last: the rate without start-up. */
  readonly streamRowsPerS: number | null
  readonly producer: ProgramUse
  readonly consumer: ProgramUse
  readonly postgres: PostgresCpu
  readonly machineCpuCores: number
  /** The machine's 1-minute load average when the measurement started and ended. */
  readonly loadAverage: readonly [number, number]
  readonly versions: number
  readonly lake: { readonly version: number; readonly files: number; readonly rows: number; readonly distinctIds: number }
}

export interface CaptureSummary {
  readonly backfill: ReadonlyArray<{
    readonly mode: CaptureMode
    readonly runs: number
    readonly endToEndRowsPerS: number
    readonly streamRowsPerS: number
    /** Median over the rounds of this ÷ poll of the same round. */
    readonly vsPoll: number | null
    readonly producerCpuSeconds: number
    readonly producerPeakRssMiB: number
    readonly consumerCpuSeconds: number
    readonly postgresCpuSeconds: number
  }>
  readonly latency: ReadonlyArray<{
    readonly load: CaptureLoad
    readonly poll: { readonly p50: number; readonly p99: number } | null
    readonly logical: { readonly p50: number; readonly p99: number } | null
    readonly logicalUpdates: { readonly p50: number; readonly p99: number } | null
    /** logical ÷ poll, inserts, p50 and p99 (> 1: logical slower). */
    readonly p50Ratio: number | null
    readonly p99Ratio: number | null
  }>
}

export interface CaptureResult {
  readonly walLevel: string | null
  /** The producer's Node options in both modes: its own (scripts/programs.ts) and the scenario's. */
  readonly producerNodeArgs: ReadonlyArray<string>
  readonly snapshotChunk: number | null
  readonly rows: number
  readonly loadSeconds: number
  readonly repetitions: number
  readonly followMs: number
  readonly latency: ReadonlyArray<CaptureLatencyRun>
  readonly backfill: ReadonlyArray<CaptureBackfillRun>
  readonly summary: CaptureSummary
  /** Slots this scenario created, and those still in pg_replication_slots at its end (should be none). */
  readonly slots: { readonly created: ReadonlyArray<string>; readonly left: ReadonlyArray<string> }
}

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

const load1 = () => round(loadavg()[0] ?? 0, 2)

export const query = async <R extends pg.QueryResultRow>(pgUrl: string, sql: string, values?: Array<unknown>): Promise<Array<R>> => {
  const client = new pg.Client({ connectionString: pgUrl, application_name: "food-orders-bench" })
  client.on("error", () => undefined)
  await client.connect()
  try {
    return (await client.query<R>(sql, values)).rows
  } finally {
    await client.end().catch(() => undefined)
  }
}

// ---------------------------------------------------------------------------------------------
// Slots and publications

const createdSlots: Array<string> = []

/** Drops a slot (its walsender terminated first) and a publication; both idempotent. */
export const dropSlotAndPublication = async (pgUrl: string, slot: string, publication: string) => {
  await query(pgUrl, "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", [slot])
    .catch(() => undefined)
  for (let attempt = 0; ; attempt++) {
    try {
      await query(pgUrl, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [slot])
      break
    } catch (error) {
      // The terminated walsender may still hold the slot for a moment.
      if (attempt >= 40) {
        say(`capture: could not drop slot ${slot}: ${error instanceof Error ? error.message : String(error)}`)
        break
      }
      await sleep(250)
    }
  }
  await query(pgUrl, `DROP PUBLICATION IF EXISTS "${publication}"`).catch((error: unknown) =>
    say(`capture: could not drop publication ${publication}: ${error instanceof Error ? error.message : String(error)}`)
  )
}

/** Names unique to a roll, and their removal at cleanup even if the run fails. */
export const logicalNames = (stack: Stack, roll: Roll) => {
  const slot = `${roll.roll.toLowerCase()}_slot`
  const publication = `${roll.roll}_pub`
  createdSlots.push(slot)
  onCleanup(`drop slot ${slot} and publication ${publication}`, () => dropSlotAndPublication(stack.pgUrl, slot, publication))
  return { slot, publication }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL's CPU for the producer

/**
 * Samples the CPU of every server process that serves the producer: sessions of this database
 * named food-orders-producer (poll: its query and LISTEN connections; logical: the snapshot and
 * query connections) and walsenders, started after `since`. New ones are picked up every 500 ms.
 */
const watchBackends = (pgUrl: string, since: number) => {
  const sampled = new Map<number, { type: string; usage: ReturnType<typeof sampleUsage> }>()
  let stopped = false
  let client: pg.Client | null = null
  const discover = async () => {
    if (stopped) return
    try {
      if (client === null) {
        const fresh = new pg.Client({ connectionString: pgUrl, application_name: "food-orders-bench" })
        // A lost connection (the server restarted by someone else) must not end the benchmark: the
        // next round connects again.
        fresh.on("error", () => {
          if (client === fresh) client = null
          void fresh.end().catch(() => undefined)
        })
        client = fresh
        await fresh.connect()
      }
      const rows = (await (client as pg.Client).query<{ pid: number; backend_type: string; started: string }>(
        `SELECT pid, backend_type, (extract(epoch FROM backend_start) * 1000)::float8 AS started FROM pg_stat_activity
         WHERE datname = current_database() AND backend_start >= to_timestamp($1::double precision / 1000)
           AND (application_name = 'food-orders-producer' OR backend_type = 'walsender')`,
        [since - 1_000]
      )).rows
      for (const row of rows) {
        if (sampled.has(row.pid) || stopped) continue
        const usage = sampleUsage(row.pid, 250)
        // It started after the programs did, with no CPU used then: what it used before this first
        // sample (up to the 500 ms of discovery) counts too.
        usage.samples.unshift({ t: Number(row.started), rssKiB: 0, cpuSeconds: 0 })
        sampled.set(row.pid, { type: row.backend_type, usage })
      }
    } catch {
      // The next round tries again, on a new connection.
      const broken = client as pg.Client | null
      client = null
      await broken?.end().catch(() => undefined)
    }
  }
  void discover()
  const timer = setInterval(() => void discover(), 500)
  const stop = async () => {
    if (stopped) return
    stopped = true
    clearInterval(timer)
    for (const { usage } of sampled.values()) usage.stop()
    await (client as pg.Client | null)?.end().catch(() => undefined)
  }
  onCleanup("stop sampling PostgreSQL backends", stop)
  return {
    between: (from: number, to: number): PostgresCpu => {
      const backends = [...sampled.entries()].map(([pid, { type, usage }]) => ({ pid, type, cpuSeconds: usage.between(from, to).cpuSeconds }))
      const cpuSeconds = round(backends.reduce((sum, b) => sum + b.cpuSeconds, 0), 2)
      return { cpuSeconds, cpuCores: round(cpuSeconds / ((to - from) / 1000), 2), backends }
    },
    stop
  }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

export const assertAllRunning = (programs: PipelinePrograms) => {
  for (const program of [programs.producer, ...programs.consumers]) {
    if (!program.isRunning()) throw new Error(`${program.name} exited unexpectedly; output:\n${program.output()}`)
  }
}

const startPrograms = (stack: Stack, roll: Roll, mode: CaptureMode, label: string, options: CaptureOptions, interval: number | null) => {
  const names = mode === "logical" ? logicalNames(stack, roll) : null
  const programs = startPipelinePrograms(stack, roll, {
    label,
    interval,
    producer: "ours",
    consumers: 1,
    producerNodeArgs: options.producerNodeArgs,
    extraEnv: {
      CAPTURE_MODE: mode,
      KAFKA_PARTITIONS: "1",
      ...(names === null ? {} : { CAPTURE_SLOT: names.slot, CAPTURE_PUBLICATION: names.publication }),
      ...(options.snapshotChunk === null ? {} : { CAPTURE_SNAPSHOT_CHUNK: String(options.snapshotChunk) })
    }
  })
  return { programs, names }
}

export const use = (program: PipelinePrograms["producer"], from: number, to: number): ProgramUse => {
  const cpu = program.usage.between(from, to)
  return { cpuSeconds: cpu.cpuSeconds, cpuCores: cpu.cpuCores, peakRssMiB: program.peakRssMiB() }
}

const sourceState = async (pgUrl: string, table: string) => {
  const [row] = await query<{ n: string; d: string; amount: string | null; delivered: string }>(pgUrl,
    `SELECT count(*) AS n, count(DISTINCT order_id) AS d, sum(amount)::text AS amount,
            count(*) FILTER (WHERE order_status = 'DELIVERED') AS delivered FROM "${table}"`)
  return { rows: Number(row!.n), distinctIds: Number(row!.d), amount: Number(row!.amount ?? 0), delivered: Number(row!.delivered) }
}

const lakeFiles = async (lakePath: string) => {
  const lake = await Effect.runPromise(readLakeVersion(lakePath).pipe(Effect.provide(stderrLogger)))
  return { version: lake.version, paths: lake.files.map((f) => f.location) }
}

/** Every message of a one-partition topic: offset, key, and the op and xid headers of a change. */
export const readChanges = async (brokers: string, topic: string) => {
  const kafka = new Kafka({ clientId: "food-orders-bench-reader", brokers: brokers.split(","), logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  const offsets = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  if (offsets.length !== 1) throw new Error(`${topic}: expected one partition, found ${offsets.length}`)
  const high = Number(offsets[0]!.high)
  const messages: Array<{ offset: number; key: number; op: string | null; xid: number | null; backlog: boolean; timestamp: number }> = []
  if (high === 0) return messages
  const consumer = kafka.consumer({ groupId: `bench-capture-reader-${randomBytes(4).toString("hex")}`, maxBytesPerPartition: 8 * 1024 * 1024 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let seen = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${seen} of ${high} messages of ${topic} in 180 s`)), 180_000)
    consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const header = (name: string) => {
            const value = m.headers?.[name]
            return value === undefined ? null : value.toString()
          }
          const xid = header("xid")
          messages.push({
            offset: Number(m.offset),
            key: Number(m.key?.toString() ?? NaN),
            op: header("op"),
            xid: xid === null ? null : Number(xid),
            backlog: header(backlogHeader) === "true",
            timestamp: Number(m.timestamp)
          })
          seen = Number(m.offset) + 1
        }
        if (seen >= high) {
          clearTimeout(timer)
          resolve()
        }
      }
    }).catch(reject)
  })
  await consumer.disconnect()
  return messages
}

/** When the follower first saw a version holding the message at `offset` (one partition: messages = next offset). */
export const visibleAt = (follower: TableFollower, offset: number): number | null => {
  const versions = follower.versions
  let lo = 0
  let hi = versions.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (versions[mid]!.messages > offset) hi = mid
    else lo = mid + 1
  }
  return lo < versions.length ? versions[lo]!.seenAt : null
}

// ---------------------------------------------------------------------------------------------
// Latency

const runCaptureLatency = async (
  stack: Stack,
  mode: CaptureMode,
  load: CaptureLoad,
  options: CaptureOptions,
  interval: number | null,
  duck: DuckDb
): Promise<CaptureLatencyRun> => {
  const roll = newRoll(stack, `c${mode === "poll" ? "p" : "l"}${load === "mix" ? "m" : "i"}`)
  await createTable(stack.pgUrl, roll.table, true)
  await createRollTopics(stack, roll, 1)
  const follower = await followTable(roll.lake, { topic: roll.topic, pollMs: options.pollMs })
  const { programs, names } = startPrograms(stack, roll, mode, `capture-${mode}-${load}`, options, interval)
  const backends = watchBackends(stack.pgUrl, programs.startedAt)
  let generator: Awaited<ReturnType<typeof startGenerator>> | null = null
  try {
    generator = await startGenerator(stack.pgUrl, roll.table)
    const g = generator
    // Warm-up (inserts only): connections, the slot, JIT, the group join.
    await g.run(`capture-warm-up-${mode}-${load}`, 200, 1_000, 20)
    const warm = await waitUntil(() => {
      assertAllRunning(programs)
      return follower.messages() >= g.committed()
    }, 120_000, 50)
    if (!warm) throw new Error(`capture latency ${mode}/${load}: the warm-up orders did not reach the table within 120 s`)
    programs.producer.resetPeak()
    programs.consumers[0]!.resetPeak()
    const label = `capture-${mode}-${load}-${options.latency.rate}`
    const firstCommit = g.commits.length
    const firstUpdate = g.updates.length
    const machineBefore = readMachineCpu()
    const loadBefore = load1()
    const startedAt = Date.now()
    const done = await g.run(label, options.latency.rate, options.latency.durationMs, options.latency.tickMs, load === "mix")
    const commits = g.commits.slice(firstCommit).filter((c) => c.label === label)
    const updates = g.updates.slice(firstUpdate).filter((u) => u.label === label)
    const updated = updates.reduce((sum, u) => sum + u.n, 0)
    // Poll never publishes the updates: its drain is from the last INSERT.
    const lastCommitAt = Math.max(...commits.map((c) => c.t), ...(mode === "logical" ? updates.map((u) => u.t) : []))
    // Poll publishes the inserts only; logical every change.
    const expected = g.committed() + (mode === "logical" ? updated : 0)
    const drained = await waitUntil(() => {
      assertAllRunning(programs)
      return follower.messages() >= expected
    }, options.latency.drainTimeoutMs, 20)
    const drainedAt = Date.now()
    const machineAfter = readMachineCpu()
    const loadAfter = load1()
    if (!drained) say(`capture latency ${mode}/${load}: ${expected - follower.messages()} messages still missing after ${options.latency.drainTimeoutMs / 1000} s`)
    const producer = use(programs.producer, startedAt, drainedAt)
    const consumer = use(programs.consumers[0]!, startedAt, drainedAt)
    const postgres = backends.between(startedAt, drainedAt)
    const written = programs.consumers[0]!.logs.filter((l) => l.message === "batch written" && l.receivedAt >= startedAt && l.receivedAt <= drainedAt)
    const batches = {
      count: written.length,
      meanMessages: written.length === 0 ? 0 : Math.round(written.reduce((sum, l) => sum + Number(l.annotations["messages"] ?? 0), 0) / written.length),
      openMs: distribution(written.map((l) => Number(l.annotations["open_ms"] ?? NaN)).filter(Number.isFinite)),
      writeMs: distribution(written.map((l) => Number(l.annotations["ms"] ?? NaN)).filter(Number.isFinite))
    }
    await g.stop()
    generator = null
    await programs.stop()
    await backends.stop()
    await follower.poll()

    const changes = await readChanges(stack.kafkaBrokers, roll.topic)
    const insertAt = new Map<number, number>()
    for (const c of commits) for (let id = c.first; id <= c.last; id++) insertAt.set(id, c.t)
    const updateAt = new Map(updates.map((u) => [u.xid, u.t]))
    const insertLatency: Array<number> = []
    const updateLatency: Array<number> = []
    const seenInserts = new Set<number>()
    let updatesSeen = 0
    let lastVisible = startedAt
    let backlogFlagged = 0
    const capture: Array<number> = []
    const delivery: Array<number> = []
    const split = (m: { timestamp: number }, committed: number, visible: number) => {
      capture.push(m.timestamp - committed)
      delivery.push(visible - m.timestamp)
    }
    for (const m of changes) {
      const visible = visibleAt(follower, m.offset)
      if (m.backlog && (updateAt.has(m.xid ?? -1) || insertAt.has(m.key))) backlogFlagged += 1
      if (m.op === "update" && m.xid !== null) {
        const committed = updateAt.get(m.xid)
        if (committed === undefined || visible === null) continue
        updatesSeen += 1
        updateLatency.push(visible - committed)
        split(m, committed, visible)
        lastVisible = Math.max(lastVisible, visible)
      } else if (m.op === null || m.op === "c" || m.op === "insert" || m.op === "snapshot") {
        // Poll's messages carry op "c" (created); logical's "insert" (or "snapshot" before its consistent point).
        const committed = insertAt.get(m.key)
        if (committed === undefined || visible === null || seenInserts.has(m.key)) continue
        seenInserts.add(m.key)
        insertLatency.push(visible - committed)
        split(m, committed, visible)
        lastVisible = Math.max(lastVisible, visible)
      }
    }
    const final = await lakeFiles(roll.lake)
    const lakeState = await duck.state(final.paths)
    const source = await sourceState(stack.pgUrl, roll.table)
    return {
      mode,
      load,
      rate: options.latency.rate,
      durationS: seconds(options.latency.durationMs, 1),
      inserted: done.inserted,
      achievedRate: done.achievedRate,
      updated,
      updateTransactions: updates.length,
      insertLatencyMs: distribution(insertLatency),
      updateLatencyMs: updateLatency.length === 0 ? null : distribution(updateLatency),
      captureMs: distribution(capture),
      deliveryMs: distribution(delivery),
      missingInserts: done.inserted - seenInserts.size,
      missingUpdates: updated - updatesSeen,
      messages: changes.length,
      versions: follower.versions.filter((v) => v.seenAt >= startedAt).length,
      drainS: round((lastVisible - lastCommitAt) / 1000, 2),
      producer,
      consumer,
      batches,
      backlogFlagged,
      postgres,
      machineCpuCores: round((machineAfter.busy - machineBefore.busy) / ((drainedAt - startedAt) / 1000), 2),
      loadAverage: [loadBefore, loadAfter],
      state: {
        lake: lakeState,
        source,
        equal: lakeState.rows === source.rows && lakeState.distinctIds === source.distinctIds &&
          Math.abs(lakeState.amount - source.amount) < 0.005 && lakeState.delivered === source.delivered
      }
    }
  } finally {
    await generator?.stop().catch(() => undefined)
    await programs.stop()
    await backends.stop()
    await follower.stop()
    if (names !== null) await dropSlotAndPublication(stack.pgUrl, names.slot, names.publication)
    await dropTable(stack.pgUrl, roll.table)
  }
}

// ---------------------------------------------------------------------------------------------
// Backfill / initial snapshot

const runCaptureBackfill = async (
  roundNo: number,
  stack: Stack,
  table: string,
  mode: CaptureMode,
  options: CaptureOptions,
  interval: number | null,
  duck: DuckDb
): Promise<CaptureBackfillRun> => {
  const roll = newRoll(stack, `cb${mode === "poll" ? "p" : "l"}`, table)
  await createRollTopics(stack, roll, 1)
  const follower = await followTable(roll.lake, { topic: roll.topic, pollMs: options.pollMs })
  const machineBefore = readMachineCpu()
  const loadBefore = load1()
  const { programs, names } = startPrograms(stack, roll, mode, `capture-backfill-${mode}`, options, interval)
  const backends = watchBackends(stack.pgUrl, programs.startedAt)
  const t0 = programs.startedAt
  try {
    const done = await waitUntil(() => {
      assertAllRunning(programs)
      return follower.messages() >= options.rows
    }, options.timeoutMs, 50)
    if (!done) {
      throw new Error(`capture backfill ${mode}: only ${follower.messages()} of ${options.rows} orders in the table within ${options.timeoutMs / 1000} s` +
        (follower.lastError() === null ? "" : `; the follower's last error: ${follower.lastError()}`))
    }
    const tEnd = follower.reachedAt(options.rows)!
    const machineAfter = readMachineCpu()
    const machineWallS = (Date.now() - t0) / 1000
    const loadAfter = load1()
    const producer = use(programs.producer, t0, tEnd)
    const consumer = use(programs.consumers[0]!, t0, tEnd)
    const postgres = backends.between(t0, tEnd)
    await programs.stop()
    await backends.stop()
    await follower.poll()
    const firstData = follower.versions.find((v) => v.messages > 0)
    const final = await lakeFiles(roll.lake)
    const summary = await duck.summary(final.paths)
    const wallMs = tEnd - t0
    return {
      round: roundNo,
      mode,
      rows: options.rows,
      endToEndSeconds: seconds(wallMs),
      endToEndRowsPerS: perSecond(options.rows, wallMs),
      firstDataS: firstData === undefined ? null : seconds(firstData.seenAt - t0),
      streamRowsPerS: firstData === undefined || tEnd <= firstData.seenAt ? null : perSecond(options.rows - firstData.messages, tEnd - firstData.seenAt),
      producer,
      consumer,
      postgres,
      machineCpuCores: round((machineAfter.busy - machineBefore.busy) / machineWallS, 2),
      loadAverage: [loadBefore, loadAfter],
      versions: follower.versions.length,
      lake: { version: final.version, files: final.paths.length, rows: summary.rows, distinctIds: summary.distinctIds }
    }
  } finally {
    await programs.stop()
    await backends.stop()
    await follower.stop()
    if (names !== null) await dropSlotAndPublication(stack.pgUrl, names.slot, names.publication)
  }
}

// ---------------------------------------------------------------------------------------------

const pair = (d: Distribution | undefined | null) => (d === undefined || d === null ? null : { p50: d.p50, p99: d.p99 })

export const summariseCapture = (latency: ReadonlyArray<CaptureLatencyRun>, backfill: ReadonlyArray<CaptureBackfillRun>): CaptureSummary => ({
  backfill: (["poll", "logical"] as const).flatMap((mode) => {
    const mine = backfill.filter((r) => r.mode === mode)
    if (mine.length === 0) return []
    const m = (f: (r: CaptureBackfillRun) => number | null) => median(mine.map((r) => f(r) ?? NaN))
    const ratios = mine.flatMap((r) => {
      const base = backfill.find((b) => b.round === r.round && b.mode === "poll")
      return base === undefined ? [] : [r.endToEndRowsPerS / base.endToEndRowsPerS]
    })
    return [{
      mode,
      runs: mine.length,
      endToEndRowsPerS: Math.round(m((r) => r.endToEndRowsPerS)),
      streamRowsPerS: Math.round(m((r) => r.streamRowsPerS)),
      vsPoll: ratios.length === 0 ? null : round(median(ratios), 2),
      producerCpuSeconds: round(m((r) => r.producer.cpuSeconds), 1),
      producerPeakRssMiB: round(m((r) => r.producer.peakRssMiB), 1),
      consumerCpuSeconds: round(m((r) => r.consumer.cpuSeconds), 1),
      postgresCpuSeconds: round(m((r) => r.postgres.cpuSeconds), 1)
    }]
  }),
  latency: (["inserts", "mix"] as const).flatMap((load) => {
    const poll = latency.find((r) => r.load === load && r.mode === "poll")
    const logical = latency.find((r) => r.load === load && r.mode === "logical")
    if (poll === undefined && logical === undefined) return []
    return [{
      load,
      poll: pair(poll?.insertLatencyMs),
      logical: pair(logical?.insertLatencyMs),
      logicalUpdates: pair(logical?.updateLatencyMs),
      p50Ratio: poll === undefined || logical === undefined ? null : ratio(logical.insertLatencyMs.p50, poll.insertLatencyMs.p50),
      p99Ratio: poll === undefined || logical === undefined ? null : ratio(logical.insertLatencyMs.p99, poll.insertLatencyMs.p99)
    }]
  })
})

/** wal_level = logical on this machine's server (may restart it once), or a failure with what to do. */
export const ensureLogical = async (stack: Stack): Promise<string | null> => {
  if (stack.source === "local") {
    const wal = await ensureLogicalWal()
    if (!wal.logical) throw new Error(`capture: PostgreSQL has wal_level=${wal.walLevel}; logical capture needs wal_level=logical. ${wal.advice ?? ""}`)
    return wal.walLevel
  }
  const [row] = await query<{ wal_level: string }>(stack.pgUrl, "SHOW wal_level")
  if (row?.wal_level !== "logical") throw new Error(`capture: the server at PG_URL has wal_level=${row?.wal_level}; logical capture needs wal_level=logical`)
  return row.wal_level
}

/** Which of the slots made by `logicalNames` are still in pg_replication_slots (should be none after their runs). */
export const slotsLeft = async (pgUrl: string, slots: ReadonlyArray<string>): Promise<Array<string>> =>
  slots.length === 0
    ? []
    : (await query<{ slot_name: string }>(pgUrl, "SELECT slot_name FROM pg_replication_slots WHERE slot_name = ANY($1)", [slots])).map((r) => r.slot_name)

export const runCapture = async (stack: Stack, options: CaptureOptions, interval: number | null, duck: DuckDb): Promise<CaptureResult> => {
  const walLevel = await ensureLogical(stack)
  const latency: Array<CaptureLatencyRun> = []
  const wanted = (part: string) => options.only === undefined || options.only === null || options.only.includes(part)
  for (const load of options.loads) {
    for (const mode of ["poll", "logical"] as const) {
      if (!wanted(`${mode}/${load}`)) continue
      say(`capture latency: ${mode}, ${load === "mix" ? "inserts + 2.33 updates per order" : "inserts only"}, ` +
        `${options.latency.rate} orders/s for ${options.latency.durationMs / 1000} s`)
      const run = await runCaptureLatency(stack, mode, load, options, interval, duck)
      latency.push(run)
      say(`capture latency ${mode}/${load}: inserts p50 ${run.insertLatencyMs.p50} ms, p99 ${run.insertLatencyMs.p99} ms` +
        (run.updateLatencyMs === null ? "" : `; updates p50 ${run.updateLatencyMs.p50} ms, p99 ${run.updateLatencyMs.p99} ms`) +
        `; missing ${run.missingInserts} inserts, ${run.missingUpdates} of ${run.updated} updates; producer ${run.producer.cpuCores} cores, ` +
        `${run.producer.peakRssMiB} MiB; PostgreSQL ${run.postgres.cpuCores} cores; state ${run.state.equal ? "equal" : "differs"}`)
      await sleep(1_000)
    }
  }
  const backfill: Array<CaptureBackfillRun> = []
  let loadSeconds = 0
  if (wanted("backfill")) {
    const prepared = await prepareBackfillTable(stack, { rows: options.rows, days: options.days, interval, timeoutMs: options.timeoutMs })
    const roll = prepared.roll
    loadSeconds = prepared.loadSeconds
    try {
      for (let roundNo = 1; roundNo <= options.repetitions; roundNo++) {
        for (const mode of ["poll", "logical"] as const) {
          say(`capture backfill ${roundNo}/${options.repetitions}: ${options.rows} orders, ${mode === "poll" ? "poll's backfill" : "logical's initial snapshot"}`)
          const run = await runCaptureBackfill(roundNo, stack, roll.table, mode, options, interval, duck)
          backfill.push(run)
          say(`capture backfill ${mode}: ${run.endToEndRowsPerS}/s end to end (${run.endToEndSeconds} s; first data at ${run.firstDataS} s); ` +
            `producer ${run.producer.cpuSeconds} s CPU, ${run.producer.peakRssMiB} MiB; consumer ${run.consumer.cpuSeconds} s CPU; ` +
            `PostgreSQL ${run.postgres.cpuSeconds} s CPU; DuckDB ${run.lake.rows} rows, ${run.lake.distinctIds} distinct`)
          await sleep(1_000)
        }
      }
    } finally {
      await dropTable(stack.pgUrl, roll.table)
    }
  }
  const left = createdSlots.length === 0
    ? []
    : (await query<{ slot_name: string }>(stack.pgUrl, "SELECT slot_name FROM pg_replication_slots WHERE slot_name = ANY($1)", [createdSlots])).map((r) => r.slot_name)
  return {
    walLevel,
    producerNodeArgs: [...programNodeOptions.producer, ...options.producerNodeArgs],
    snapshotChunk: options.snapshotChunk,
    rows: options.rows,
    loadSeconds: round(loadSeconds, 1),
    repetitions: options.repetitions,
    followMs: options.pollMs,
    latency,
    backfill,
    summary: summariseCapture(latency, backfill),
    slots: { created: [...createdSlots], left }
  }
}
