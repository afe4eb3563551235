import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer } from "effect"
import { loadConfig } from "../config/loadConfig.ts"
import { dlqTopicOf } from "../config/PipelineConfig.ts"
import { consumerLayer } from "../layers/live.ts"
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
  yield* consume({
    topic: config.kafka.topic,
    maxBatchMessages: config.consumer.max_batch_messages,
    pollWait: "1 second",
    once: cli.once
  }).pipe(Effect.provide(consumerLayer(config)))
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
