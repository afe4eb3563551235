import { Schema } from "effect"
import * as Path from "node:path"
import type { PipelineConfig } from "../../../config/PipelineConfig.ts"
import { jsonFile } from "../../file/jsonFile.ts"

/**
 * What logical capture must remember outside the slot: how far its initial snapshot got. The slot
 * holds the stream's position itself (confirmed_flush_lsn).
 *
 * `consistent_point` null: the slot is being created and nothing of it was published yet, so a
 * restart may drop it and start over.
 *
 * `epoch`: the slot's life, first in every change key it produces (Change.ts), so that the consumer
 * takes a new slot's changes even when their LSNs are below the old slot's (a failover, a restore).
 * Fixed with the consistent point when the slot is created, as the time in ms but above the previous
 * slot's (`newEpoch`), and kept here through restarts; while a slot is being created, the previous
 * slot's. Absent in files written before epochs: 0.
 */
/**
 * How far the snapshot of a table captured beside the orders table got (`tables:`). `lsn`: the
 * position its snapshot rows are keyed at: the slot's consistent point when the table was read with
 * the slot's exported snapshot, or the WAL position read just before its own snapshot when it was
 * added to a running configuration (every change committed before that is in the snapshot; the
 * consumer drops the stream's older ones). `seq`: the last sequence number its rows took.
 */
export const TableSnapshotState = Schema.Struct({
  oid: Schema.Int,
  lsn: Schema.String,
  done: Schema.Boolean,
  /** The key of the last row published (as PostgreSQL's text of each key column); null: none yet. */
  last_key: Schema.NullOr(Schema.Array(Schema.NullOr(Schema.String))),
  rows: Schema.Int,
  seq: Schema.Int
})
export type TableSnapshotState = typeof TableSnapshotState.Type

export const CaptureState = Schema.Struct({
  slot: Schema.String,
  epoch: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }),
  consistent_point: Schema.NullOr(Schema.String),
  /**
   * pg_class oid of the captured table when the slot was created: a table dropped and created again
   * while the producer was stopped leaves nothing in the stream to say so (absent in older files).
   */
  table_oid: Schema.optional(Schema.Int),
  snapshot: Schema.Struct({
    done: Schema.Boolean,
    /** The last order_id published from the snapshot (null: none yet). */
    last_order_id: Schema.NullOr(Schema.Int),
    rows: Schema.Int
  }),
  /** Per table captured beside the orders table, by `schema.name`. */
  tables: Schema.optionalWith(Schema.Record({ key: Schema.String, value: TableSnapshotState }), { default: () => ({}) })
})
export type CaptureState = typeof CaptureState.Type

/**
 * The epoch of a slot created now: the clock, or one above the previous slot's when the clock is
 * behind it (moved back, or a re-snapshot within the same millisecond).
 */
export const newEpoch = (previous: number, nowMs: number) => Math.max(nowMs, previous + 1)

/** `<slot>.logical.json` in the directory of the poll cursor (streaming.last_processed_timestamp_location). */
export const captureStatePath = (config: PipelineConfig, slot: string) =>
  Path.join(Path.dirname(config.streaming.last_processed_timestamp_location), `${slot}.logical.json`)

export const captureStateFile = (path: string) => jsonFile(path, CaptureState)
