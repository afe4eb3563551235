/**
 * One pipeline under test: a fresh roll (table, topic, lake, state), its producer (ours, or the
 * reference-like poller) and our consumer as separate processes, the lake watcher and the topic's
 * high watermark.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pipelineEnv } from "../test/support/pipelineProcess.ts"
import { type Program, startProgram } from "./children.ts"
import { onCleanup } from "./cleanup.ts"
import { deleteTopicsLater, rawTopicConfig } from "./kafka.ts"
import { watchLake } from "./lakeWatcher.ts"
import type { Stack } from "./stack.ts"
import { Kafka, logLevel } from "kafkajs"

export interface Roll {
  readonly roll: string
  readonly table: string
  readonly topic: string
  readonly dlqTopic: string
  readonly stateDir: string
  readonly lake: string
}

/**
 * A fresh roll: names unique to this run, a temporary state directory removed at cleanup. A repeated
 * backfill reads the same table again (`existingTable`) with a fresh topic, lake and state.
 */
export const newRoll = (stack: Stack, prefix: string, existingTable?: string): Roll => {
  const roll = `bench_${prefix}_${Date.now().toString(36)}_${randomBytes(2).toString("hex")}`
  const stateDir = mkdtempSync(join(tmpdir(), `fop-bench-${prefix}-`))
  onCleanup(`remove ${stateDir}`, () => rmSync(stateDir, { recursive: true, force: true }))
  const topic = `${roll}_food_orders_raw`
  const dlqTopic = `${roll}_food_orders_dlq`
  deleteTopicsLater(stack.kafkaBrokers, [topic, dlqTopic])
  return { roll, table: existingTable ?? `${roll}_orders`, topic, dlqTopic, stateDir, lake: join(stateDir, "output/orders") }
}

/**
 * Creates both topics up front, as the programs would (same max.message.bytes as src/layers/live.ts):
 * when two programs start together, both try to create them and one waits out a retry, which would
 * be measured as startup time.
 */
export const createRollTopics = async (stack: Stack, roll: Roll, partitions = 1): Promise<void> => {
  const admin = new Kafka({ clientId: "food-orders-bench", brokers: stack.kafkaBrokers.split(","), logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: roll.topic, numPartitions: partitions, configEntries: rawTopicConfig },
        { topic: roll.dlqTopic, numPartitions: 1, configEntries: [{ name: "max.message.bytes", value: String(16 * 1024 * 1024) }] }
      ]
    })
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

export interface PipelineOptions {
  readonly label: string
  /** STREAMING_BATCH_INTERVAL in seconds; null keeps the configuration's. */
  readonly interval: number | null
  /** "ours" runs dist/bin/producer.mjs (the bundle `npm run producer` runs); "reference" runs bench/referencePoller.ts. */
  readonly producer: "ours" | "reference"
  readonly referencePollSeconds?: number
  readonly extraEnv?: Record<string, string>
  readonly cpuProfileDir?: string
  /** Extra Node options for the producer (the capture scenario: a heap cap, which scripts/programs.ts does not give it). */
  readonly producerNodeArgs?: ReadonlyArray<string>
}

export interface Pipeline {
  readonly roll: Roll
  readonly producer: Program
  readonly consumer: Program
  readonly lake: ReturnType<typeof watchLake>
  readonly startedAt: number
  readonly env: Record<string, string>
  readonly stop: () => Promise<{ producer: number | null; consumer: number | null }>
}

export interface ProgramsOptions extends PipelineOptions {
  /** Consumers sharing the topic's partitions through the consumer group (default 1). */
  readonly consumers?: number
  /** The table's `datalake.path` (a local directory or s3://bucket/prefix) instead of the roll's local lake. */
  readonly lakePath?: string
}

/** The programs of a pipeline without the lake watcher: a producer and `consumers` consumers, same environment. */
export interface PipelinePrograms {
  readonly roll: Roll
  readonly producer: Program
  readonly consumers: ReadonlyArray<Program>
  readonly lakePath: string
  readonly startedAt: number
  readonly env: Record<string, string>
  readonly stop: () => Promise<{ producer: number | null; consumers: Array<number | null> }>
}

export const startPipelinePrograms = (stack: Stack, roll: Roll, options: ProgramsOptions): PipelinePrograms => {
  const env = pipelineEnv({
    pgUrl: stack.pgUrl,
    kafkaBrokers: stack.kafkaBrokers,
    roll: roll.roll,
    stateDir: roll.stateDir,
    extra: {
      POSTGRES_TABLE: roll.table,
      ...(options.interval === null ? {} : { STREAMING_BATCH_INTERVAL: String(options.interval) }),
      // Any free port for /metrics and /health: the defaults (9464/9465) may be taken by a pipeline
      // someone else runs on this machine, and metrics stay on, as in production.
      OBSERVABILITY_PRODUCER_PORT: "0",
      OBSERVABILITY_CONSUMER_PORT: "0",
      REFERENCE_POLL_SECONDS: String(options.referencePollSeconds ?? 5),
      ...(options.lakePath === undefined ? {} : { DATALAKE_PATH: options.lakePath }),
      ...options.extraEnv
    }
  })
  const startedAt = Date.now()
  const profile = options.cpuProfileDir === undefined ? {} : { cpuProfileDir: options.cpuProfileDir }
  const producer = startProgram({
    name: `${options.label}-producer`,
    ...(options.producer === "ours" ? { program: "producer" as const } : { script: "bench/referencePoller.ts" }),
    ...(options.producerNodeArgs === undefined ? {} : { nodeArgs: options.producerNodeArgs }),
    env,
    ...profile
  })
  const count = options.consumers ?? 1
  const consumers = Array.from({ length: count }, (_, i) =>
    startProgram({ name: `${options.label}-consumer${count === 1 ? "" : `-${i + 1}`}`, program: "consumer", env, ...profile }))
  return {
    roll,
    producer,
    consumers,
    lakePath: env["DATALAKE_PATH"]!,
    startedAt,
    env,
    stop: async () => {
      const [p, ...c] = await Promise.all([producer.stop(), ...consumers.map((consumer) => consumer.stop())])
      return { producer: p!.code, consumers: c.map((r) => r.code) }
    }
  }
}

export const startPipeline = (stack: Stack, roll: Roll, options: PipelineOptions): Pipeline => {
  const programs = startPipelinePrograms(stack, roll, { ...options, consumers: 1 })
  const lake = watchLake(roll.lake, join(programs.env["STREAMING_CHECKPOINT_LOCATION"]!, "offsets.json"))
  const consumer = programs.consumers[0]!
  return {
    roll,
    producer: programs.producer,
    consumer,
    lake,
    startedAt: programs.startedAt,
    env: programs.env,
    stop: async () => {
      const { producer, consumers } = await programs.stop()
      lake.stop()
      return { producer, consumer: consumers[0] ?? null }
    }
  }
}

/** Both programs must still be running; otherwise fail with what they printed. */
export const assertRunning = (pipeline: Pipeline): void => {
  for (const program of [pipeline.producer, pipeline.consumer]) {
    if (!program.isRunning()) throw new Error(`${program.name} exited unexpectedly; output:\n${program.output()}`)
  }
}
