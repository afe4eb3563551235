import { NodeContext } from "@effect/platform-node"
import { Cause, Effect, Layer } from "effect"
import { loadConfig } from "../config/loadConfig.ts"
import { dlqTopicOf } from "../config/PipelineConfig.ts"
import { consumerLayer } from "../layers/live.ts"
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
    once: cli.once
  }))
  const observability = observabilityLayer({
    program: "consumer",
    port: config.observability.consumer_port,
    progressInterval: config.observability.progress_interval,
    watched: ["broker", "lake"],
    progress: { consumed: ordersConsumed, written: ordersWritten },
    once: cli.once
  })
  yield* consume({
    topic: config.kafka.topic,
    pollWait: "1 second",
    flush: {
      maxMessages: config.consumer.max_batch_messages,
      maxChanges: config.consumer.max_batch_changes,
      maxBytes: config.consumer.max_batch_bytes,
      linger: `${config.consumer.linger_ms} millis`,
      backlogLinger: `${config.consumer.backlog_linger_ms} millis`
    },
    once: cli.once
  }).pipe(Effect.provide(Layer.merge(consumerLayer(config), observability)))
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  runProgramMain
)
