import { Cause, Data, type Duration, Effect, Exit, Fiber, Layer, Logger, LogLevel, Option, Ref, Schedule, Stream } from "effect"
import type pg from "pg"
import { fileCursorStore } from "../layers/file/fileCursorStore.ts"
import { deltaLake, type TableSettings } from "../layers/lake/deltaLake.ts"
import { openRowsLake } from "../layers/lake/rowsLake.ts"
import { makeMemoryTopic, type MemoryTopic } from "../layers/memory/MemoryTopic.ts"
import { memoryDeadLetters, memoryOrderPublisher, memoryOrderStream, memoryTableChangePublisher } from "../layers/memory/memoryLayers.ts"
import { pgOrderSource } from "../layers/postgres/pgOrderSource.ts"
import { pollTable } from "../programs/capture/tablePolling.ts"
import { consume, consumeWith } from "../programs/consumer/consume.ts"
import { tableWriter } from "../programs/consumer/tableLane.ts"
import { produceForever } from "../programs/producer.ts"
import { Lake } from "../services/Lake.ts"
import { OrderSource } from "../services/OrderSource.ts"
import { fileTableStorage } from "../layers/storage/fileTableStorage.ts"
import { type DemoLayout, demoNames } from "./demoLayout.ts"
import { type EmbeddedPostgres, embeddedPgClient, embeddedPool } from "./embeddedPostgres.ts"
import { countOrders, insertOrders } from "./orderInserter.ts"
import { countRestaurants, demoRestaurantsTable, openRestaurants, seedRestaurants } from "./restaurants.ts"

export class DemoPipelineError extends Data.TaggedError("DemoPipelineError")<{
  readonly reason: "producer stopped" | "consumer stopped"
  readonly cause: unknown
}> {
  override get message() {
    return `${this.reason}: ${typeof this.cause === "string" ? this.cause : String(this.cause)}`
  }
}

export interface PipelineSettings {
  readonly layout: DemoLayout
  readonly postgres: EmbeddedPostgres
  /** Orders per second while generating. */
  readonly rate: number
  readonly seconds: number
  readonly seed: number
  /** Seconds between capture cycles (the real default is 5; short, so the demo moves). */
  readonly batchInterval: number
  readonly progressEvery: Duration.DurationInput
  /** How long producer and consumer get to catch up after the last insert. */
  readonly drainTimeout: Duration.DurationInput
  readonly onProgress: (progress: Progress, elapsedSeconds: number) => Effect.Effect<void>
  /** Runs once the last order is inserted, before draining. */
  readonly onGenerated: Effect.Effect<void>
}

export interface Progress {
  /** Orders committed to PostgreSQL by the generator. */
  readonly inserted: number
  /** Messages the producer published to the in-process topic. */
  readonly captured: number
  /** Rows the consumer wrote to the lake (in files renamed into place). */
  readonly written: number
}

export interface PipelineResult extends Progress {
  /** `count(*)` of the source table at the end. */
  readonly inPostgres: number
  readonly deadLettered: number
  /** Whether producer and consumer caught up before `drainTimeout`. */
  readonly drained: boolean
  readonly restaurants: RestaurantsResult
}

const messagesIn = (topic: MemoryTopic) =>
  Ref.get(topic.log).pipe(Effect.map((log) => log.reduce((n, partition) => n + partition.length, 0)))

/** The real Lake, counting the rows it writes so progress can show them. */
const countingLake = (written: Ref.Ref<number>) =>
  Layer.effect(
    Lake,
    Effect.map(Lake, (lake) =>
      Lake.of({
        ...lake,
        commitBatch: (batch) =>
          lake.commitBatch(batch).pipe(
            Effect.tap((committed) => Ref.update(written, (n) => committed.files.reduce((sum, file) => sum + file.rows, n)))
          )
      }))
  )

/**
 * The live source, adjusted where PGlite differs from a PostgreSQL server:
 * - `changes` is silent. PGlite is one backend, so the NOTIFY from the insert trigger goes out on
 *   the connection whose INSERT fired it, never on the separate LISTEN connection `sql.listen`
 *   opens; that connection would only be refused (see embeddedPgClient). The producer polls
 *   every batch interval instead, which it does anyway when notifications are missing.
 * - Stopping the producer lets a capture read in flight finish (milliseconds) instead of
 *   interrupting it: `@effect/sql-pg` cancels an interrupted query with `pg_cancel_backend` over
 *   the pool, whose one connection is the busy one, so the cancel waits out its 5 s timeout (and
 *   on PGlite it cancels nothing: every connection reports the same pid, and it returns false).
 */
const embeddedOrderSource = Layer.effect(
  OrderSource,
  Effect.map(OrderSource, (live) =>
    OrderSource.of({
      readAfter: (after, limit) => Effect.uninterruptible(live.readAfter(after, limit)),
      changes: Stream.never
    }))
).pipe(Layer.provide(pgOrderSource(demoNames.table)))

/**
 * The live code path wherever the demo can run it: the `@effect/sql-pg` source over the embedded
 * server, the file cursor and checkpoint stores, the Parquet lake. Only Kafka is the in-process
 * stand-in: publisher and stream share one topic; dead letters get their own, as in Kafka (in the
 * raw topic they would be read back and dead-lettered again).
 */
const pipelineLayer = (settings: PipelineSettings, pool: pg.Pool, raw: MemoryTopic, dlq: MemoryTopic, written: Ref.Ref<number>) =>
  Layer.mergeAll(
    embeddedOrderSource,
    fileCursorStore(settings.layout.cursor),
    memoryOrderPublisher(raw),
    memoryOrderStream(raw),
    memoryDeadLetters(dlq),
    countingLake(written).pipe(Layer.provide(demoTable(settings.layout.lake)))
  ).pipe(
    // One client for the source and the generator: see embeddedPgClient for why one connection.
    Layer.provideMerge(embeddedPgClient(pool))
  )

/** The consumer's tables with its defaults: compaction on, as the real consumer runs it. */
const demoTableSettings: TableSettings = {
  checkpointInterval: 100,
  retention: "60 minutes",
  maintenance: { targetFileBytes: 32 * 1024 * 1024, fanIn: 8, idleMs: 60_000, vacuumInterval: "10 minutes" },
  legacy: { topic: demoNames.topic, checkpoint: Effect.succeed(undefined) }
}

const demoTable = (root: string) => deltaLake(demoTableSettings).pipe(Layer.provide(fileTableStorage(root)))

/** The programs' own info logs (a line per cycle and batch) would drown the demo's output. */
const quiet = Logger.withMinimumLogLevel(LogLevel.Warning)

/** Producer and consumer loop forever and retry outages; ending at all means a defect. */
const stillRunning = <A, E>(fiber: Fiber.RuntimeFiber<A, E>, reason: DemoPipelineError["reason"]) =>
  Effect.flatMap(Fiber.poll(fiber), (exit) =>
    Option.match(exit, {
      onNone: () => Effect.void,
      onSome: (done) =>
        new DemoPipelineError({ reason, cause: Exit.isFailure(done) ? Cause.pretty(done.cause) : "ended" })
    }))

/** Messages in a topic that are rows (not the schema markers before them). */
const rowMessagesIn = (topic: MemoryTopic) =>
  Ref.get(topic.log).pipe(Effect.map((log) => log.reduce((n, partition) => n + partition.filter((m) => m.headers["op"] !== "schema").length, 0)))

/** What the pipeline did with the restaurants table. */
export interface RestaurantsResult {
  /** Rows of the table at the end (seeded and opened while running). */
  readonly inPostgres: number
  /** Row changes the producer published to the restaurants topic. */
  readonly captured: number
}

/**
 * Runs the real producer and consumer programs as concurrent fibers (as the real ones run as
 * processes) while orders are inserted, and restaurants opened, for `seconds`; then waits until
 * every inserted row is in its topic and each table's position is at its topic's end, and stops them.
 * The restaurants table goes the way a `tables:` entry does: its own poll loop in the producer,
 * topic, consumer lane and Delta table.
 *
 * Drained is judged by counts, not by an empty capture: PGlite's clock has millisecond resolution
 * and the horizon excludes rows stamped with the reading transaction's own now(), so a capture in
 * the same millisecond as the last insert can come back empty with that insert still to capture.
 */
export const runPipeline = Effect.fn("Demo.runPipeline")(function*(settings: PipelineSettings) {
  const raw = yield* makeMemoryTopic(demoNames.topic)
  const dlq = yield* makeMemoryTopic(demoNames.dlqTopic)
  const restaurantsTopic = yield* makeMemoryTopic(demoNames.restaurantsTopic)
  const restaurants = demoRestaurantsTable(settings.layout)
  const pool = yield* embeddedPool(settings.postgres)
  const inserted = yield* Ref.make(0)
  const opened = yield* Ref.make(0)
  const written = yield* Ref.make(0)
  const progress = Effect.all({ inserted: Ref.get(inserted), captured: messagesIn(raw), written: Ref.get(written) })
  // As the consumer reads a table of `tables:` (consumer.ts): no wait for more than the topic holds.
  const flush = { maxMessages: 20000, maxBytes: 64 * 1024 * 1024, linger: "0 millis", backlogLinger: "0 millis" } as const

  return yield* Effect.gen(function*() {
    yield* seedRestaurants
    const producer = yield* produceForever({ batchSize: 5000, interval: `${settings.batchInterval} seconds` }).pipe(
      quiet,
      Effect.forkScoped
    )
    const restaurantsProducer = yield* pollTable(pool, restaurants, {
      batchSize: 5000,
      cursorLocation: settings.layout.cursor,
      horizonWaitMs: 1_000,
      intervalMs: settings.batchInterval * 1000,
      once: false
    }).pipe(Effect.provide(memoryTableChangePublisher([restaurantsTopic])), quiet, Effect.forkScoped)
    const consumer = yield* consume({ topic: demoNames.topic, pollWait: "200 millis", flush, once: false }).pipe(quiet, Effect.forkScoped)
    const restaurantsLakeNow = yield* openRowsLake(restaurants, demoTableSettings, fileTableStorage)
    const restaurantsConsumer = yield* consumeWith(tableWriter(restaurants, restaurantsLakeNow), {
      topic: restaurants.topic,
      tagLagWithTopic: true,
      pollWait: "200 millis",
      flush,
      once: false
    }).pipe(Effect.provide(memoryOrderStream(restaurantsTopic)), quiet, Effect.forkScoped)
    const allRunning = Effect.all([
      stillRunning(producer, "producer stopped"),
      stillRunning(restaurantsProducer, "producer stopped"),
      stillRunning(consumer, "consumer stopped"),
      stillRunning(restaurantsConsumer, "consumer stopped")
    ], { discard: true })

    const started = Date.now()
    const elapsed = () => (Date.now() - started) / 1000
    const reporter = yield* Effect.gen(function*() {
      yield* Effect.sleep(settings.progressEvery)
      yield* settings.onProgress(yield* progress, elapsed())
    }).pipe(Effect.forever, Effect.forkScoped)

    yield* Effect.all([
      insertOrders({ table: demoNames.table, rate: settings.rate, seconds: settings.seconds, seed: settings.seed }, inserted),
      openRestaurants(settings.seconds, 1_000, opened)
    ], { concurrency: 2, discard: true })
    yield* Fiber.interrupt(reporter)
    yield* settings.onProgress(yield* progress, elapsed())
    yield* settings.onGenerated

    const lake = yield* Lake
    const consumedOf = (positions: ReadonlyMap<number, { readonly nextOffset: bigint }>) =>
      [...positions.values()].reduce((n, p) => n + Number(p.nextOffset), 0)
    const restaurantsInPostgres = yield* countRestaurants
    const caughtUp = Effect.gen(function*() {
      yield* allRunning
      const now = yield* progress
      const ordersDone = now.captured >= now.inserted && consumedOf(yield* lake.positions(demoNames.topic)) >= now.captured
      const restaurantsDone = (yield* rowMessagesIn(restaurantsTopic)) >= restaurantsInPostgres &&
        consumedOf(yield* restaurantsLakeNow.positions(restaurants.topic)) >= (yield* messagesIn(restaurantsTopic))
      return ordersDone && restaurantsDone
    })
    const drained = yield* caughtUp.pipe(
      Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (done) => done }),
      Effect.timeoutOption(settings.drainTimeout),
      Effect.map(Option.isSome)
    )
    // Interrupting waits for a batch in flight: each program finishes it and saves its position.
    yield* Fiber.interrupt(producer)
    yield* Fiber.interrupt(restaurantsProducer)
    yield* Fiber.interrupt(consumer)
    yield* Fiber.interrupt(restaurantsConsumer)

    const final = yield* progress
    yield* settings.onProgress(final, elapsed())
    return {
      ...final,
      inPostgres: yield* countOrders(demoNames.table),
      deadLettered: yield* messagesIn(dlq),
      drained,
      restaurants: { inPostgres: yield* countRestaurants, captured: yield* rowMessagesIn(restaurantsTopic) }
    } satisfies PipelineResult
  }).pipe(Effect.scoped, Effect.provide(pipelineLayer(settings, pool, raw, dlq, written)))
})
