import { Context, Effect, Layer } from "effect"
import type { CapturedTableConfig } from "../config/capturedTables.ts"
import type { PipelineConfig } from "../config/PipelineConfig.ts"
import { consumeWith } from "../programs/consumer/consume.ts"
import type { ConsumerOptions } from "../programs/consumer/flushPolicy.ts"
import { tableWriter } from "../programs/consumer/tableLane.ts"
import { TableStorage } from "../services/TableStorage.ts"
import { kafkaOrderStream } from "./kafka/kafkaOrderStream.ts"
import { makeRowsLake } from "./lake/rowsLake.ts"
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
    const storage = Context.get(yield* Layer.build(tableStorageFor(table.path).pipe(waitingFor("the lake"))), TableStorage)
    const historyStorage = Context.get(yield* Layer.build(tableStorageFor(table.changesPath).pipe(waitingFor("the lake"))), TableStorage)
    const lake = yield* makeRowsLake(table, tableSettingsOf(config, { maintenance: true }), storage, historyStorage, yield* Effect.makeSemaphore(1))
    return yield* consumeWith(tableWriter(table, lake), { ...options, topic: table.topic, tagLagWithTopic: true }).pipe(Effect.provide(stream))
  })).pipe(Effect.annotateLogs({ table: table.display, topic: table.topic }))
