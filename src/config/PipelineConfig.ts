import { Schema } from "effect"
import { TableEntry } from "./capturedTables.ts"
import { SqlIdentifier, TopicName } from "./Identifiers.ts"
import { defaultForeignFileRetentionHours } from "../table/retention.ts"
import { saslMechanisms, securityProtocols, sslModes } from "./connectionSecurity.ts"

const Port = Schema.Int.pipe(Schema.between(1, 65535, { message: () => "Expected a port number between 1 and 65535" }))
/** YAML gives numbers, the environment gives strings: accept both. */
const NumberLike = <S extends Schema.Schema<number, number, never>>(schema: S) =>
  Schema.Union(schema, Schema.compose(Schema.NumberFromString, schema as Schema.Schema<number, number, never>))
const Positive = Schema.Number.pipe(Schema.positive({ message: () => "Expected a positive number" }))
const PositiveInt = Schema.Int.pipe(Schema.positive({ message: () => "Expected a positive integer" }))
/** 0 picks a free port; -1 turns the endpoint off. */
const HttpPort = Schema.Int.pipe(Schema.between(-1, 65535, { message: () => "Expected a port (0 = any free port, -1 = off)" }))
const Partitions = Schema.Int.pipe(Schema.between(1, 1000, { message: () => "Expected a partition count between 1 and 1000" }))
const NonNegative = Schema.Number.pipe(Schema.nonNegative({ message: () => "Expected a number >= 0" }))

/**
 * The lake's flush policy: a batch closes at 100,000 rows or 64 MiB of messages, or 100 ms after its
 * first message arrived. Light traffic gets its files within ~100 ms; a backlog gets large files.
 */
const consumerDefaults = { max_batch_messages: 100_000, max_batch_changes: 8_000, max_batch_bytes: 64 * 1024 * 1024, linger_ms: 100, backlog_linger_ms: 3_000 }

/**
 * The lake table's upkeep. A checkpoint every 100 versions (~10 s of trickle traffic); 60 minutes of
 * history (time travel, and what a long query may still read) before log entries and removed files
 * go; compaction in the consumer, merging 8 files of a size tier into one, up to 32 MiB files, and
 * a date partition whole once it has had no new file for a minute.
 */
const tableDefaults = {
  checkpoint_interval: 100,
  retention_minutes: 60,
  compaction: true,
  target_file_mb: 32,
  compaction_fan_in: 8,
  vacuum_interval_minutes: 10,
  idle_compaction_seconds: 60,
  allow_short_retention: false,
  foreign_file_retention_hours: defaultForeignFileRetentionHours
}

const FanIn = Schema.Int.pipe(Schema.between(2, 1000, { message: () => "Expected an integer between 2 and 1000" }))
const BooleanLike = Schema.Union(
  Schema.Boolean,
  Schema.transform(Schema.Literal("true", "false"), Schema.Boolean, { decode: (s) => s === "true", encode: (b) => (b ? "true" : "false") })
)

/** A replication slot name as PostgreSQL accepts it: lower-case letters, digits and underscores. */
const SlotName = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9_]{1,63}$/, {
    message: (issue) => `Expected a slot name (lower-case letters, digits, _; at most 63), got ${JSON.stringify(issue.actual)}`
  })
)

/**
 * How the producer captures: `poll` (the reference design's query for new rows: inserts only) or
 * `logical` (PostgreSQL logical replication: inserts, updates and deletes, in commit order). The slot
 * and publication default to names derived from the table (`slotNameOf`, `publicationNameOf`).
 */
const captureDefaults = {
  mode: "poll" as const,
  snapshot_chunk: 10_000,
  heartbeat_seconds: 10,
  slot_lag_warn_mb: 1024
}

const NonEmpty = Schema.String.pipe(Schema.minLength(1, { message: () => "Expected a non-empty string" }))

/** Kafka's clients take `sasl_ssl` as well as `SASL_SSL`. */
const UpperCased = <A extends string>(literal: Schema.Schema<A, A, never>) =>
  Schema.compose(Schema.transform(Schema.String, Schema.String, { decode: (s) => s.toUpperCase(), encode: (s) => s }), literal)

const BrokerList = Schema.String.pipe(
  Schema.pattern(/^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/, {
    message: (issue) => `Expected host:port[,host:port...], got ${JSON.stringify(issue.actual)}`
  })
)

/**
 * `configs/orders_stream.yml`: the reference design's keys keep their meaning; sections and keys
 * after them are ours and optional.
 */
export const PipelineConfig = Schema.Struct({
  postgres: Schema.Struct({
    jdbc_url: Schema.String.pipe(Schema.startsWith("jdbc:postgresql://", {
      message: (issue) => `Expected jdbc:postgresql://host:port/db, got ${JSON.stringify(issue.actual)}`
    })),
    host: NonEmpty,
    port: NumberLike(Port),
    db: NonEmpty,
    user: NonEmpty,
    password: Schema.Redacted(Schema.String),
    table: SqlIdentifier,
    /**
     * TLS as libpq reads these keys (src/layers/postgres/pgTls.ts): `prefer` by default, as libpq and
     * pgJDBC do; the verify modes check the server's certificate against `sslrootcert`.
     */
    sslmode: Schema.optionalWith(Schema.Literal(...sslModes), { default: () => "prefer" as const }),
    sslrootcert: Schema.optional(NonEmpty),
    sslcert: Schema.optional(NonEmpty),
    sslkey: Schema.optional(NonEmpty),
    sslpassword: Schema.optional(Schema.Redacted(Schema.String))
  }),
  kafka: Schema.Struct({
    brokers: BrokerList,
    topic: TopicName,
    dlq_topic: Schema.optional(TopicName),
    consumer_group: Schema.optional(NonEmpty),
    client_id: Schema.optionalWith(NonEmpty, { default: () => "food-orders-pipeline" }),
    /**
     * Partitions of the raw topic when we create it (keyed by order_id, so an order's messages stay
     * in order on one partition). An existing topic keeps its count: changing it would remap keys.
     */
    partitions: Schema.optionalWith(NumberLike(Partitions), { default: () => 3 }),
    /**
     * The client properties users know from Kafka's own clients (`security.protocol`,
     * `sasl.mechanism`, `ssl.ca.location`...), with `_` for `.` (src/layers/kafka/kafkaSecurity.ts).
     */
    security_protocol: Schema.optionalWith(UpperCased(Schema.Literal(...securityProtocols)), { default: () => "PLAINTEXT" as const }),
    sasl_mechanism: Schema.optional(UpperCased(Schema.Literal(...saslMechanisms))),
    sasl_username: Schema.optional(NonEmpty),
    sasl_password: Schema.optional(Schema.Redacted(Schema.String)),
    /** PEM file of the CAs to trust; absent: Node's bundled public CAs (Confluent Cloud, MSK). */
    ssl_ca_location: Schema.optional(NonEmpty),
    ssl_certificate_location: Schema.optional(NonEmpty),
    ssl_key_location: Schema.optional(NonEmpty),
    ssl_key_password: Schema.optional(Schema.Redacted(Schema.String)),
    /** `https` (default): the broker's certificate must name the host; `none` skips that check only. */
    ssl_endpoint_identification_algorithm: Schema.optionalWith(Schema.Literal("https", "none", ""), { default: () => "https" as const })
  }),
  datalake: Schema.Struct({
    path: NonEmpty,
    format: Schema.Literal("parquet")
  }),
  streaming: Schema.Struct({
    checkpoint_location: NonEmpty,
    last_processed_timestamp_location: NonEmpty,
    batch_interval: NumberLike(Positive)
  }),
  capture: Schema.optionalWith(
    Schema.Struct({
      mode: Schema.optionalWith(Schema.Literal("poll", "logical"), { default: () => captureDefaults.mode }),
      slot: Schema.optional(SlotName),
      publication: Schema.optional(SqlIdentifier),
      /** Rows per read of the initial snapshot (each one published and acknowledged before the next). */
      snapshot_chunk: Schema.optionalWith(NumberLike(PositiveInt), { default: () => captureDefaults.snapshot_chunk }),
      /** How often an idle producer confirms its position, so the slot retains no WAL of other tables. */
      heartbeat_seconds: Schema.optionalWith(NumberLike(Positive), { default: () => captureDefaults.heartbeat_seconds }),
      /** A warning when the slot retains more WAL than this. */
      slot_lag_warn_mb: Schema.optionalWith(NumberLike(Positive), { default: () => captureDefaults.slot_lag_warn_mb })
    }),
    { default: () => captureDefaults }
  ),
  /**
   * Tables captured beside the orders table (capture.mode logical), each into its own topic and Delta
   * table (capturedTables.ts). Absent: the orders table alone.
   */
  tables: Schema.optionalWith(Schema.Array(TableEntry), { default: () => [] }),
  producer: Schema.optionalWith(
    Schema.Struct({
      batch_size: Schema.optionalWith(NumberLike(PositiveInt), { default: () => 2500 })
    }),
    { default: () => ({ batch_size: 2500 }) }
  ),
  consumer: Schema.optionalWith(
    Schema.Struct({
      max_batch_messages: Schema.optionalWith(NumberLike(PositiveInt), { default: () => consumerDefaults.max_batch_messages }),
      max_batch_bytes: Schema.optionalWith(NumberLike(PositiveInt), { default: () => consumerDefaults.max_batch_bytes }),
      /** Changes of logical capture per batch (each rewrites a row and adds one to the history). */
      max_batch_changes: Schema.optionalWith(NumberLike(PositiveInt), { default: () => consumerDefaults.max_batch_changes }),
      linger_ms: Schema.optionalWith(NumberLike(NonNegative), { default: () => consumerDefaults.linger_ms }),
      backlog_linger_ms: Schema.optionalWith(NumberLike(NonNegative), { default: () => consumerDefaults.backlog_linger_ms })
    }),
    { default: () => consumerDefaults }
  ),
  table: Schema.optionalWith(
    Schema.Struct({
      checkpoint_interval: Schema.optionalWith(NumberLike(PositiveInt), { default: () => tableDefaults.checkpoint_interval }),
      retention_minutes: Schema.optionalWith(NumberLike(Positive), { default: () => tableDefaults.retention_minutes }),
      compaction: Schema.optionalWith(BooleanLike, { default: () => tableDefaults.compaction }),
      target_file_mb: Schema.optionalWith(NumberLike(Positive), { default: () => tableDefaults.target_file_mb }),
      compaction_fan_in: Schema.optionalWith(NumberLike(FanIn), { default: () => tableDefaults.compaction_fan_in }),
      vacuum_interval_minutes: Schema.optionalWith(NumberLike(Positive), { default: () => tableDefaults.vacuum_interval_minutes }),
      idle_compaction_seconds: Schema.optionalWith(NumberLike(Positive), { default: () => tableDefaults.idle_compaction_seconds }),
      /** retention_minutes below minimumRetentionMinutes only with this (tests, benchmarks). */
      allow_short_retention: Schema.optionalWith(BooleanLike, { default: () => tableDefaults.allow_short_retention }),
      foreign_file_retention_hours: Schema.optionalWith(NumberLike(Positive), { default: () => tableDefaults.foreign_file_retention_hours })
    }),
    { default: () => tableDefaults }
  ),
  observability: Schema.optionalWith(
    Schema.Struct({
      producer_port: Schema.optionalWith(NumberLike(HttpPort), { default: () => 9464 }),
      consumer_port: Schema.optionalWith(NumberLike(HttpPort), { default: () => 9465 }),
      progress_interval: Schema.optionalWith(NumberLike(Positive), { default: () => 10 }),
      /** Where /metrics and /health listen; absent: loopback, or every interface inside a container. */
      bind_address: Schema.optional(NonEmpty),
      /** With both, /metrics and /health ask for HTTP basic auth (/health/live stays open: it tells nothing). */
      basic_auth_user: Schema.optional(NonEmpty),
      basic_auth_password: Schema.optional(Schema.Redacted(Schema.String))
    }),
    { default: () => ({ producer_port: 9464, consumer_port: 9465, progress_interval: 10 }) }
  )
})
export type PipelineConfig = typeof PipelineConfig.Type

/** The dead-letter topic: `<roll>_food_orders_dlq` for the reference topic `<roll>_food_orders_raw`. */
export const dlqTopicOf = (config: PipelineConfig): string =>
  config.kafka.dlq_topic ?? (config.kafka.topic.endsWith("_raw")
    ? `${config.kafka.topic.slice(0, -"_raw".length)}_dlq`
    : `${config.kafka.topic}_dlq`)

export const consumerGroupOf = (config: PipelineConfig): string =>
  config.kafka.consumer_group ?? `${config.kafka.topic}_lake_writer`

/** The replication slot of logical capture: `capture.slot`, else `<table>_slot` (lower-cased). */
export const slotNameOf = (config: PipelineConfig): string => config.capture.slot ?? `${config.postgres.table.toLowerCase().slice(0, 58)}_slot`

/** The publication of logical capture: `capture.publication`, else `<table>_pub`. */
export const publicationNameOf = (config: PipelineConfig): SqlIdentifier =>
  config.capture.publication ?? SqlIdentifier.make(`${config.postgres.table.slice(0, 59)}_pub`)

/**
 * The change history table `order_changes` beside the orders table at `ordersPath` (a directory or
 * an `s3://` prefix): the same parent, e.g. `.../output/orders` → `.../output/order_changes`.
 */
export const changesTableBeside = (ordersPath: string): string => {
  const trimmed = ordersPath.replace(/\/+$/, "")
  return `${trimmed.slice(0, trimmed.lastIndexOf("/") + 1)}order_changes`
}

export const changesPathOf = (config: PipelineConfig): string => changesTableBeside(config.datalake.path)

export const brokersOf = (config: PipelineConfig): ReadonlyArray<string> =>
  config.kafka.brokers.split(",").map((b) => b.trim())
