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
 */
export const CaptureState = Schema.Struct({
  slot: Schema.String,
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

/** `<slot>.logical.json` in the directory of the poll cursor (streaming.last_processed_timestamp_location). */
export const captureStatePath = (config: PipelineConfig, slot: string) =>
  Path.join(Path.dirname(config.streaming.last_processed_timestamp_location), `${slot}.logical.json`)

export const captureStateFile = (path: string) => jsonFile(path, CaptureState)
