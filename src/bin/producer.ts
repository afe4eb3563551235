import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Layer } from "effect"
import { capturedTablesOf, findCapturedTable } from "../config/capturedTables.ts"
import { loadConfig } from "../config/loadConfig.ts"
import { logicalProducerLayer, producerLayer } from "../layers/live.ts"
import { serverAccessOf } from "../observability/httpServer.ts"
import { describeKafkaSecurity } from "../layers/kafka/kafkaSecurity.ts"
import { pgSettingsOf, queryPool } from "../layers/postgres/logical/pgConnection.ts"
import { connectPostgres } from "../layers/postgres/pgStartup.ts"
import { ordersCaptured, ordersPublished } from "../observability/metrics.ts"
import { observabilityLayer } from "../observability/observabilityLayer.ts"
import { logicalCaptureSettingsOf } from "../programs/capture/captureSettings.ts"
import { runLogicalCapture } from "../programs/capture/logicalCapture.ts"
import { pollTables } from "../programs/capture/tablePolling.ts"
import { produceForever, produceOnce } from "../programs/producer.ts"
import { parseCli } from "../runtime/cli.ts"
import { loggerLayer } from "../runtime/logging.ts"
import { runProgramMain } from "../runtime/runMain.ts"

const cli = parseCli(
  "producer",
  "Captures orders from PostgreSQL (capture.mode poll: new rows; logical: every change, by logical replication) and publishes them to Kafka as JSON."
)

const main = Effect.gen(function*() {
  const config = yield* loadConfig(cli.config)
  const options = { batchSize: config.producer.batch_size, interval: `${config.streaming.batch_interval} seconds` as const }
  yield* Effect.logInfo("producer starting").pipe(Effect.annotateLogs({
    table: config.postgres.table,
    topic: config.kafka.topic,
    capture: config.capture.mode,
    kafka_security: describeKafkaSecurity(config.kafka),
    cursor_file: config.streaming.last_processed_timestamp_location,
    once: cli.once
  }))
  if (cli.resnapshot && config.capture.mode !== "logical") {
    return yield* Effect.fail(new Error("--resnapshot applies to capture.mode logical only"))
  }
  const captured = capturedTablesOf(config)
  const resnapshotTables: Array<string> = []
  for (const name of cli.resnapshotTables) {
    const table = findCapturedTable(captured, name)
    if (table === undefined) {
      return yield* Effect.fail(new Error(
        `--resnapshot-table ${name}: not a table of tables: (${captured.map((t) => t.display).join(", ") || "none configured"}); ` +
          "the orders table is published again with --resnapshot"
      ))
    }
    resnapshotTables.push(table.display)
  }
  const observability = observabilityLayer({
    program: "producer",
    port: config.observability.producer_port,
    progressInterval: config.observability.progress_interval,
    watched: ["database", "broker"],
    progress: { captured: ordersCaptured, published: ordersPublished },
    once: cli.once
,
    access: serverAccessOf(config.observability)
  })
  // The PostgreSQL check runs with /metrics and /health already served: a wait for the database at
  // start is visible there, as any later outage is.
  const connect = connectPostgres(config, { once: cli.once })
  if (config.capture.mode === "logical") {
    yield* Effect.gen(function*() {
      const ssl = yield* connect
      yield* runLogicalCapture(logicalCaptureSettingsOf(config, { once: cli.once, resnapshot: cli.resnapshot, resnapshotTables }, ssl))
    }).pipe(Effect.provide(Layer.merge(logicalProducerLayer(config), observability)))
  } else {
    const orders = cli.once ? Effect.asVoid(produceOnce(options)) : produceForever(options)
    yield* Effect.gen(function*() {
      const ssl = yield* connect
      // The tables of `tables:` poll beside the orders, each on its own.
      const program = captured.length === 0 ? orders : Effect.scoped(Effect.gen(function*() {
        const pool = yield* queryPool(pgSettingsOf(config, ssl))
        const tables = pollTables(pool, captured, {
          batchSize: config.producer.batch_size,
          cursorLocation: config.streaming.last_processed_timestamp_location,
          horizonWaitMs: 1_000,
          intervalMs: config.streaming.batch_interval * 1000,
          once: cli.once
        }, resnapshotTables)
        // The orders' capture is not cut short by a stopped table: the exit status says it at the end.
        const [, stopped] = yield* Effect.all([orders, tables], { concurrency: "unbounded" })
        if (stopped.length > 0) return yield* Effect.fail(new Error(`capture stopped for ${stopped.join(", ")} (see the errors above)`))
      }))
      yield* program.pipe(Effect.provide(producerLayer(config, ssl)))
    }).pipe(Effect.provide(observability))
  }
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  runProgramMain
)
