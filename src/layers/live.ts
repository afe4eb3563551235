import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Option, Schedule } from "effect"
import * as Path from "node:path"
import { capturedTablesOf } from "../config/capturedTables.ts"
import { Checkpoint } from "../domain/Checkpoint.ts"
import { brokersOf, changesPathOf, consumerGroupOf, dlqTopicOf, type PipelineConfig } from "../config/PipelineConfig.ts"
import { outageBackoff } from "../runtime/schedules.ts"
import { isBrokerRefusal, isPermanentStorageError, SourceError, StorageError } from "../services/errors.ts"
import { TableError } from "../table/tableErrors.ts"
import { jsonFile } from "./file/jsonFile.ts"
import { fileCursorStore } from "./file/fileCursorStore.ts"
import { ensureTopics, type KafkaSettings, kafkaProducerLayer } from "./kafka/kafkaClient.ts"
import { kafkaDeadLetters } from "./kafka/kafkaDeadLetters.ts"
import { kafkaSecurityOf } from "./kafka/kafkaSecurity.ts"
import { kafkaOrderPublisher } from "./kafka/kafkaOrderPublisher.ts"
import { kafkaOrderStream } from "./kafka/kafkaOrderStream.ts"
import { kafkaTableChangePublisher } from "./kafka/kafkaTableChangePublisher.ts"
import { deltaLake, type TableSettings } from "./lake/deltaLake.ts"
import { tableStorageFor } from "./storage/tableStorageFor.ts"
import { pgOrderSource } from "./postgres/pgOrderSource.ts"
import type { PgSsl } from "./postgres/pgTls.ts"

export const kafkaSettingsOf = (config: PipelineConfig): KafkaSettings => ({
  brokers: brokersOf(config),
  clientId: config.kafka.client_id,
  security: kafkaSecurityOf(config.kafka)
})

/**
 * Room for oversized garbage: whatever lands in the raw topic must fit, with the reason headers
 * added, into the dead-letter topic, or one bad message would stall the stream.
 */
const rawTopicConfig = { "max.message.bytes": String(8 * 1024 * 1024) }
const dlqTopicConfig = { "max.message.bytes": String(16 * 1024 * 1024) }

export const topicsLayer = (config: PipelineConfig) =>
  Layer.effectDiscard(ensureTopics(kafkaSettingsOf(config), [
    { topic: config.kafka.topic, partitions: config.kafka.partitions, config: rawTopicConfig },
    { topic: dlqTopicOf(config), partitions: 1, config: dlqTopicConfig },
    // Each table of `tables:` has its own topic, partitioned like the orders topic.
    ...capturedTablesOf(config).map((table) => ({ topic: table.topic, partitions: config.kafka.partitions, config: rawTopicConfig }))
  ]))

/**
 * A service that is down at start is waited for, with capped backoff and a log line per attempt,
 * rather than failing the program.
 */
export const waitingFor = (what: string) => <A, E, R>(layer: Layer.Layer<A, E, R>) =>
  layer.pipe(
    Layer.tapError((error) =>
      isTransient(error)
        ? Effect.logWarning(`waiting for ${what}`).pipe(
          Effect.annotateLogs({ error: error instanceof Error ? error.message : String(error) })
        )
        : Effect.void
    ),
    Layer.retry(outageBackoff().pipe(Schedule.upTo("1 hour"), Schedule.whileInput(isTransient)))
  )

/**
 * A missing privilege, a missing bucket or refused keys, or a table that is not ours do not fix
 * themselves: fail at start with the message instead of waiting. An unreachable database, broker or
 * object store is waited for.
 */
const isTransient = (error: unknown) =>
  !(error instanceof SourceError && error.reason === "query") &&
  !isBrokerRefusal(error) &&
  !(error instanceof StorageError && isPermanentStorageError(error)) &&
  !(error instanceof TableError)

/**
 * The connection pool to the configured PostgreSQL; two connections (a query and LISTEN, or a
 * cancel). `ssl` as negotiated at start (pgStartup.ts).
 */
export const pgClientLayer = (config: PipelineConfig, ssl: PgSsl, applicationName: string) =>
  PgClient.layer({
    host: config.postgres.host,
    port: config.postgres.port,
    database: config.postgres.db,
    username: config.postgres.user,
    password: config.postgres.password,
    ssl,
    maxConnections: 2,
    connectTimeout: "5 seconds",
    applicationName
  })

export const producerLayer = (config: PipelineConfig, ssl: PgSsl) =>
  Layer.mergeAll(
    pgOrderSource(config.postgres.table).pipe(
      Layer.provide(pgClientLayer(config, ssl, "food-orders-producer")),
      waitingFor("PostgreSQL")
    ),
    fileCursorStore(config.streaming.last_processed_timestamp_location),
    // The table publisher serves the tables of `tables:`, polled beside the orders.
    Layer.merge(kafkaOrderPublisher(config.kafka.topic, config.postgres.table), kafkaTableChangePublisher).pipe(
      Layer.provide(kafkaProducerLayer(kafkaSettingsOf(config))),
      Layer.provide(topicsLayer(config)),
      waitingFor("Kafka")
    )
  )

/**
 * capture.mode `logical`: only the publisher is a layer; the replication slot, its connections and
 * the snapshot state belong to the capture program (src/programs/capture/logicalCapture.ts).
 */
export const logicalProducerLayer = (config: PipelineConfig) =>
  Layer.merge(kafkaOrderPublisher(config.kafka.topic, config.postgres.table), kafkaTableChangePublisher).pipe(
    Layer.provide(kafkaProducerLayer(kafkaSettingsOf(config))),
    Layer.provide(topicsLayer(config)),
    waitingFor("Kafka")
  )

export const consumerLayer = (config: PipelineConfig) => {
  const settings = kafkaSettingsOf(config)
  return Layer.mergeAll(
    kafkaOrderStream(settings, config.kafka.topic, consumerGroupOf(config)).pipe(
      Layer.provide(topicsLayer(config)),
      waitingFor("Kafka")
    ),
    kafkaDeadLetters(dlqTopicOf(config)).pipe(
      Layer.provide(kafkaProducerLayer(settings)),
      waitingFor("Kafka")
    ),
    lakeLayer(config, { maintenance: true })
  )
}

/**
 * The previous release's offsets file under `streaming.checkpoint_location`: read once, to turn its
 * lake into a table with the same positions. The table's `txn` actions are the truth after that.
 */
export const legacyCheckpointOf = (config: PipelineConfig) =>
  jsonFile(Path.join(config.streaming.checkpoint_location, "offsets.json"), Checkpoint).load.pipe(
    Effect.map(Option.getOrUndefined)
  )

export const tableSettingsOf = (config: PipelineConfig, options: { readonly maintenance: boolean }): TableSettings => ({
  checkpointInterval: config.table.checkpoint_interval,
  retention: Duration.minutes(config.table.retention_minutes),
  foreignFileRetention: Duration.hours(config.table.foreign_file_retention_hours),
  maintenance: options.maintenance && config.table.compaction
    ? {
      targetFileBytes: Math.round(config.table.target_file_mb * 1024 * 1024),
      fanIn: config.table.compaction_fan_in,
      idleMs: config.table.idle_compaction_seconds * 1000,
      vacuumInterval: Duration.minutes(config.table.vacuum_interval_minutes)
    }
    : false,
  legacy: { topic: config.kafka.topic, checkpoint: legacyCheckpointOf(config) }
})

/**
 * The orders table at `datalake.path`: a directory, or `s3://bucket/prefix` on S3 or an
 * S3-compatible server (the storage layer waits for an unreachable endpoint and stops at once on a
 * missing bucket or refused credentials).
 */
export const lakeLayer = (config: PipelineConfig, options: { readonly maintenance: boolean }) =>
  deltaLake(tableSettingsOf(config, options), tableStorageFor(changesPathOf(config))).pipe(
    Layer.provide(tableStorageFor(config.datalake.path)),
    // The store can go away between its check and the table's first read (chaos: S3 killed then).
    waitingFor("the lake")
  )
