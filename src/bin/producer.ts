import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Layer } from "effect"
import { loadConfig } from "../config/loadConfig.ts"
import { producerLayer } from "../layers/live.ts"
import { healthLayer } from "../observability/Health.ts"
import { observabilityServer } from "../observability/httpServer.ts"
import { ordersCaptured, ordersPublished } from "../observability/metrics.ts"
import { progressLogger } from "../observability/progress.ts"
import { produceForever, produceOnce } from "../programs/producer.ts"
import { parseCli } from "../runtime/cli.ts"
import { loggerLayer } from "../runtime/logging.ts"

const cli = parseCli("producer", "Captures new orders from PostgreSQL and publishes them to Kafka as JSON.")

const main = Effect.gen(function*() {
  const config = yield* loadConfig(cli.config)
  const options = { batchSize: config.producer.batch_size, interval: `${config.streaming.batch_interval} seconds` as const }
  yield* Effect.logInfo("producer starting").pipe(Effect.annotateLogs({
    table: config.postgres.table,
    topic: config.kafka.topic,
    cursor_file: config.streaming.last_processed_timestamp_location,
    once: cli.once
  }))
  const program = cli.once ? Effect.asVoid(produceOnce(options)) : produceForever(options)
  const observability = cli.once || config.observability.producer_port < 0
    ? healthLayer(["database", "broker"])
    : Layer.mergeAll(
      observabilityServer("producer", config.observability.producer_port, "observability.producer_port"),
      progressLogger(config.observability.progress_interval, { captured: ordersCaptured, published: ordersPublished })
    ).pipe(Layer.provideMerge(healthLayer(["database", "broker"])))
  yield* program.pipe(Effect.provide(Layer.merge(producerLayer(config), observability)))
})

main.pipe(
  Effect.tapErrorCause((cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError(cause)),
  Effect.provide(Layer.merge(NodeContext.layer, loggerLayer)),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
