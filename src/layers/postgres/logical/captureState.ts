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
  })
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
