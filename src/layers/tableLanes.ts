import { Effect, Layer } from "effect"
import type { CapturedTableConfig } from "../config/capturedTables.ts"
import type { PipelineConfig } from "../config/PipelineConfig.ts"
import { consumeWith } from "../programs/consumer/consume.ts"
import type { ConsumerOptions } from "../programs/consumer/flushPolicy.ts"
import { tableWriter } from "../programs/consumer/tableLane.ts"
import { kafkaOrderStream } from "./kafka/kafkaOrderStream.ts"
import { openRowsLake } from "./lake/rowsLake.ts"
import { kafkaSettingsOf, tableSettingsOf, topicsLayer, waitingFor } from "./live.ts"
import { tableStorageFor } from "./storage/tableStorageFor.ts"

/**
 * One table captured beside the orders table, consumed: its topic (its own consumer group) into its
 * Delta table and history, by the consumer loop. Several run side by side in the consumer process,
 * each with its own connections and tables, sharing the dead-letter publisher.
 */
export const consumeTable = (config: PipelineConfig, table: CapturedTableConfig, options: Omit<ConsumerOptions, "topic"> & { readonly once: boolean }) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* Layer.build(
      kafkaOrderStream(kafkaSettingsOf(config), table.topic, table.consumerGroup).pipe(Layer.provide(topicsLayer(config)), waitingFor("Kafka"))
    )
    const lake = yield* openRowsLake(table, tableSettingsOf(config, { maintenance: true }), (path) => tableStorageFor(path).pipe(waitingFor("the lake")))
    return yield* consumeWith(tableWriter(table, lake), { ...options, topic: table.topic, tagLagWithTopic: true }).pipe(Effect.provide(stream))
  })).pipe(Effect.annotateLogs({ table: table.display, topic: table.topic }))
