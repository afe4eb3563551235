/**
 * Consumers sharing a partitioned topic and taking over from each other, against the real
 * PostgreSQL and Kafka with the real programs as processes: three consumers of one group on a
 * 3-partition topic; one SIGKILLed, one frozen (SIGSTOP) past its session timeout while it holds a
 * written but uncommitted batch, then continued. The survivor takes every partition over from the
 * table's positions; the frozen one's late commit is refused; the lake ends exact.
 */
import { afterAll, expect, it } from "vitest"
import { describeIntegration } from "../support/endpoints.ts"
import { testKafka } from "../support/kafka.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { type RunningProgram, startProgram } from "../support/pipelineProcess.ts"
import { tableNextOffsets } from "../support/tablePosition.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

type LogLine = Record<string, unknown>
const message = (line: LogLine) => String(line["message"])
const annotations = (line: LogLine) => (line["annotations"] ?? {}) as Record<string, unknown>

const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 90_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

/** The partitions a consumer owns after its latest join (null before its first). */
const owned = (consumer: RunningProgram): string | null => {
  const joins = consumer.logs().filter((l) => message(l) === "partitions assigned")
  return joins.length === 0 ? null : String(annotations(joins[joins.length - 1]!)["partitions"])
}

describeIntegration("consumers taking over from each other", (endpoints) => {
  const open: Array<TestPipeline> = []
  const running: Array<RunningProgram> = []
  afterAll(async () => {
    for (const program of running) {
      program.signal("SIGCONT")
      await program.stop("SIGKILL")
    }
    for (const p of open) await p.close()
  })

  /** How many partitions the topic has; 0 while it does not exist. */
  const topicPartitions = async (topic: string) => {
    const admin = testKafka(endpoints.kafkaBrokers).admin()
    await admin.connect()
    try {
      if (!(await admin.listTopics()).includes(topic)) return 0
      return (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]?.partitions.length ?? 0
    } finally {
      await admin.disconnect()
    }
  }

  const topicEnds = async (topic: string) => {
    const admin = testKafka(endpoints.kafkaBrokers).admin()
    await admin.connect()
    try {
      return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, BigInt(o.high)]))
    } finally {
      await admin.disconnect()
    }
  }

  /** A pipeline on a 3-partition topic, its running programs, and what the tests wait for. */
  const setup = async (extra: Record<string, string> = {}) => {
    const p = await makeTestPipeline(endpoints, "takeover", {
      extra: {
        KAFKA_PARTITIONS: "3",
        PRODUCER_BATCH_SIZE: "100",
        STREAMING_BATCH_INTERVAL: "0.5",
        CONSUMER_MAX_BATCH_MESSAGES: "150",
        CONSUMER_LINGER_MS: "50",
        CONSUMER_BACKLOG_LINGER_MS: "200",
        ...extra
      }
    })
    open.push(p)
    const start = (program: "producer" | "consumer", more: Record<string, string> = {}) => {
      const started = startProgram(program, { ...p.env, ...more })
      running.push(started)
      return started
    }
    const orders = async () => Number((await p.pool.query(`SELECT count(*)::int AS n FROM "${p.table}"`)).rows[0].n)
    /** Every order in PostgreSQL is in the topic, and the table's positions are at the topic's ends. */
    const drained = async () => {
      const ends = await topicEnds(p.topic)
      const total = [...ends.values()].reduce((a, b) => a + b, 0n)
      if (total < BigInt(await orders())) return false
      const positions = await tableNextOffsets(p.lake, p.topic).catch(() => new Map<number, bigint>())
      return [...ends].every(([partition, end]) => (positions.get(partition) ?? 0n) >= end)
    }
    /** The lake holds exactly PostgreSQL's orders. */
    const expectExact = async (count: number) => {
      const { rows: [source] } = await p.pool.query(`SELECT count(*)::int AS n, sum(amount)::text AS sum FROM "${p.table}"`)
      expect(source.n).toBe(count)
      const lake = await summariseLake(p.lake)
      expect({ rows: lake.rows, ids: lake.distinctIds, sum: lake.sum }).toEqual({ rows: count, ids: count, sum: source.sum })
      return lake
    }
    // The producer creates the 3-partition topic.
    const producer = start("producer")
    await until("the producer to create the topic", async () => (await topicPartitions(p.topic)) === 3)
    return { p, start, drained, expectExact, producer }
  }

  /** A consumer's log lines from the moment it was continued. */
  const sinceContinued = (consumer: RunningProgram) => {
    const logs = consumer.logs()
    const at = logs.findIndex((l) => message(l) === "FOP_PAUSE_AT: continued")
    return at < 0 ? [] : logs.slice(at)
  }
  const isConflict = (l: LogLine) => message(l).startsWith("another writer committed a partition of this batch first")

  it("three consumers, one killed and one frozen past its session: every order once, the frozen one's late commit refused", async () => {
    const { p, start, drained, expectExact, producer } = await setup()
    const killed = start("consumer")
    const survivor = start("consumer")
    // Frozen by itself at its first batch that has files written and not yet committed.
    const frozen = start("consumer", { FOP_PAUSE_AT: "consumer.after-lake-files:1" })
    const consumers = [killed, survivor, frozen]
    await until("the group to give each consumer one partition", () => {
      const sets = consumers.map(owned)
      return sets.every((s) => s !== null && /^\d$/.test(s)) && new Set(sets).size === 3
    })

    // Wave 1: every partition gets orders; the frozen consumer stops holding its batch.
    await p.pool.query(insertOrdersSql(p.table, 1, 600, "2025-07-01 08:00:00", 7))
    await frozen.waitForLog((l) => message(l) === "FOP_PAUSE_AT: stopping the process", 60_000)
    const frozenPartitions = owned(frozen)
    await killed.waitForLog((l) => message(l) === "batch written", 60_000)
    expect(await killed.stop("SIGKILL")).toBeNull()

    // Wave 2 while one consumer is dead and one frozen: after their sessions expire (10 s), the
    // survivor owns every partition and resumes each from the table.
    await p.pool.query(insertOrdersSql(p.table, 601, 600, "2025-07-02 08:00:00", 7))
    await until("the survivor to own all three partitions", () => owned(survivor) === "0,1,2")
    await until("the survivor to drain the topic", drained)
    const positionsBeforeWaking = await tableNextOffsets(p.lake, p.topic)

    // The frozen consumer wakes up and carries on with its commit: refused, its batch dropped.
    frozen.signal("SIGCONT")
    const refused = await frozen.waitForLog(isConflict, 30_000)
    expect(String(annotations(refused)["partitions"])).toContain(String(frozenPartitions))
    // Its first outcome after waking is the refusal, not a batch written.
    const woke = sinceContinued(frozen)
    const firstWritten = woke.findIndex((l) => message(l) === "batch written")
    expect(woke.findIndex(isConflict)).toBeLessThan(firstWritten === -1 ? Infinity : firstWritten)
    // The table did not move for it: the positions are where the survivor left them.
    expect(await tableNextOffsets(p.lake, p.topic)).toEqual(positionsBeforeWaking)

    // It rejoins the group and shares the topic again; wave 3 goes through both.
    await until("the frozen consumer to rejoin the group", () => sinceContinued(frozen).some((l) => message(l) === "partitions assigned"), 60_000)
    await p.pool.query(insertOrdersSql(p.table, 1201, 300, "2025-07-03 08:00:00", 7))
    await until("both consumers to drain wave 3", drained)

    expect(await survivor.stop("SIGTERM")).toBe(0)
    expect(await frozen.stop("SIGTERM")).toBe(0)
    await producer.stop("SIGTERM")
    const lake = await expectExact(1500)
    const conflicts = (c: RunningProgram) => c.logs().filter(isConflict).length
    console.info(`[takeover] conflicts: frozen ${conflicts(frozen)}, survivor ${conflicts(survivor)}, killed ${conflicts(killed)}; ` +
      `frozen held partition(s) ${frozenPartitions}; lake ${lake.rows} rows in ${lake.files} files, version ${lake.version}`)
  }, 240_000)

  it("a frozen consumer whose partition the new owner has not committed yet commits first; the lake still ends exact", async () => {
    // The survivor keeps each batch open 15 s: when it takes the frozen one's partition over, the
    // frozen one (continued at once) commits before it.
    const { p, start, drained, expectExact, producer } = await setup()
    const survivor = start("consumer", { CONSUMER_MAX_BATCH_MESSAGES: "100000", CONSUMER_LINGER_MS: "15000", CONSUMER_BACKLOG_LINGER_MS: "15000" })
    const frozen = start("consumer", { FOP_PAUSE_AT: "consumer.after-lake-files:1" })
    await until("the group to share the partitions between both", () => {
      const sets = [survivor, frozen].map(owned)
      return sets.every((s) => s !== null && s !== "") && new Set(sets).size === 2
    })
    await p.pool.query(insertOrdersSql(p.table, 1, 600, "2025-07-01 08:00:00", 7))
    await frozen.waitForLog((l) => message(l) === "FOP_PAUSE_AT: stopping the process", 60_000)
    const frozenPartitions = owned(frozen)
    await until("the survivor to own all three partitions", () => owned(survivor) === "0,1,2")
    frozen.signal("SIGCONT")
    // Nobody committed its partitions since it read them: its commit is legitimately first.
    await until("the frozen consumer's outcome", () => sinceContinued(frozen).some((l) => message(l) === "batch written" || isConflict(l)), 30_000)
    const woke = sinceContinued(frozen)
    const written = woke.find((l) => message(l) === "batch written")
    expect(written, JSON.stringify(woke.map((l) => [message(l), annotations(l)["detail"]]))).toBeDefined()
    expect(woke.findIndex((l) => message(l) === "batch written")).toBeLessThan(woke.findIndex(isConflict) === -1 ? Infinity : woke.findIndex(isConflict))
    // Its own partitions, those its batch had messages of: one of two may have had none yet when it filled.
    const writtenPartitions = String(annotations(written!)["partitions"]).split(",")
    expect(writtenPartitions.length).toBeGreaterThan(0)
    for (const partition of writtenPartitions) expect(String(frozenPartitions).split(",")).toContain(partition)
    await p.pool.query(insertOrdersSql(p.table, 601, 300, "2025-07-02 08:00:00", 7))
    await until("the topic to drain", drained).catch(async (error) => {
      const dump = (c: RunningProgram) => c.logs().slice(-40).map((l) => `${message(l)} ${JSON.stringify(annotations(l))}`).join("\n")
      console.error(`ends ${JSON.stringify([...(await topicEnds(p.topic))].map(String))} table ${JSON.stringify([...(await tableNextOffsets(p.lake, p.topic))].map(String))}\n` +
        `--- survivor\n${dump(survivor)}\n${survivor.stderr().slice(-3000)}\n--- frozen\n${dump(frozen)}\n${frozen.stderr().slice(-3000)}`)
      throw error
    })
    expect(await survivor.stop("SIGTERM")).toBe(0)
    expect(await frozen.stop("SIGTERM")).toBe(0)
    await producer.stop("SIGTERM")
    await expectExact(900)
    // The survivor either met the frozen one's commit (conflict, re-read) or dropped its batch on the
    // rebalance the frozen one's rejoin caused; both resume from the table.
    console.info(`[takeover] zombie first: survivor conflicts ${survivor.logs().filter(isConflict).length}, ` +
      `re-reads ${survivor.logs().filter((l) => message(l).startsWith("assignment changed")).length}`)
  }, 240_000)
})
