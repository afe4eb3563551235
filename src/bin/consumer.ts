import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Layer } from "effect"
import { loadConfig } from "../config/loadConfig.ts"
import { dlqTopicOf } from "../config/PipelineConfig.ts"
import { capturedTablesOf } from "../config/capturedTables.ts"
import { consumerLayer } from "../layers/live.ts"
import { serverAccessOf } from "../observability/httpServer.ts"
import { describeKafkaSecurity } from "../layers/kafka/kafkaSecurity.ts"
import { consumeTable } from "../layers/tableLanes.ts"
import { ordersConsumed, ordersWritten } from "../observability/metrics.ts"
import { observabilityLayer } from "../observability/observabilityLayer.ts"
import { consume } from "../programs/consumer/consume.ts"
import { parseCli } from "../runtime/cli.ts"
import { loggerLayer } from "../runtime/logging.ts"
import { runProgramMain } from "../runtime/runMain.ts"

const cli = parseCli("consumer", "Reads orders from Kafka, cleans them and commits them to the lake's Delta table (date-partitioned Parquet\nfiles and _delta_log/), which it also compacts, checkpoints and vacuums.")

const main = Effect.gen(function*() {
  const config = yield* loadConfig(cli.config)
  yield* Effect.logInfo("consumer starting").pipe(Effect.annotateLogs({
    topic: config.kafka.topic,
    dlq_topic: dlqTopicOf(config),
    lake: config.datalake.path,
    compaction: config.table.compaction,
    kafka_security: describeKafkaSecurity(config.kafka),
    once: cli.once
  }))
  const observability = observabilityLayer({
    program: "consumer",
    port: config.observability.consumer_port,
    progressInterval: config.observability.progress_interval,
    watched: ["broker", "lake"],
    progress: { consumed: ordersConsumed, written: ordersWritten },
    once: cli.once
,
    access: serverAccessOf(config.observability)
  })
  const options = {
    pollWait: "1 second",
    flush: {
      maxMessages: config.consumer.max_batch_messages,
      maxChanges: config.consumer.max_batch_changes,
      maxBytes: config.consumer.max_batch_bytes,
      linger: `${config.consumer.linger_ms} millis`,
      backlogLinger: `${config.consumer.backlog_linger_ms} millis`
    },
    once: cli.once
  } as const
  // The orders, and each table of `tables:` on its own: a table whose stream stopped (a change its
  // Delta table cannot follow) is reported, and the others go on; the program then ends in failure.
  const tables = capturedTablesOf(config)
  const failures = yield* Effect.all([
    consume({ ...options, topic: config.kafka.topic }).pipe(Effect.asVoid),
    ...tables.map((table) =>
      consumeTable(config, table, options).pipe(
        Effect.asVoid,
        Effect.catchAll((error) =>
          Effect.logError("table stream stopped; the other tables go on").pipe(
            Effect.annotateLogs({ table: table.display, error: error instanceof Error ? error.message : String(error) }),
            Effect.as(error)
          )
        )
      )
    )
  ], { concurrency: "unbounded" }).pipe(Effect.provide(Layer.merge(consumerLayer(config), observability)))
  const stopped = failures.filter((failure) => failure !== undefined)
  if (stopped.length > 0) return yield* Effect.fail(stopped[0])
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  runProgramMain
)
