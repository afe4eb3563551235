import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer } from "effect"
import { loadConfig } from "../config/loadConfig.ts"
import { dlqTopicOf } from "../config/PipelineConfig.ts"
import { consumerLayer } from "../layers/live.ts"
import { healthLayer } from "../observability/Health.ts"
import { observabilityServer } from "../observability/httpServer.ts"
import { ordersConsumed, ordersWritten } from "../observability/metrics.ts"
import { progressLogger } from "../observability/progress.ts"
import { consume } from "../programs/consumer.ts"
import { parseCli } from "../runtime/cli.ts"
import { loggerLayer } from "../runtime/logging.ts"

const cli = parseCli("consumer", "Reads orders from Kafka, cleans them and writes the date-partitioned Parquet lake.")

const main = Effect.gen(function*() {
  const config = yield* loadConfig(cli.config)
  yield* Effect.logInfo("consumer starting").pipe(Effect.annotateLogs({
    topic: config.kafka.topic,
    dlq_topic: dlqTopicOf(config),
    lake: config.datalake.path,
    checkpoint: config.streaming.checkpoint_location,
    once: cli.once
  }))
  const observability = cli.once || config.observability.consumer_port < 0
    ? healthLayer(["broker", "lake"])
    : Layer.mergeAll(
      observabilityServer("consumer", config.observability.consumer_port, "observability.consumer_port"),
      progressLogger(config.observability.progress_interval, { consumed: ordersConsumed, written: ordersWritten })
    ).pipe(Layer.provideMerge(healthLayer(["broker", "lake"])))
  yield* consume({
    topic: config.kafka.topic,
    maxBatchMessages: config.consumer.max_batch_messages,
    pollWait: "1 second",
    fill: { linger: `${config.consumer.linger_ms} millis`, maxBytes: config.consumer.max_batch_bytes },
    once: cli.once
  }).pipe(Effect.provide(Layer.merge(consumerLayer(config), observability)))
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
