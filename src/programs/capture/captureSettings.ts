import { Duration } from "effect"
import { type CapturedTableConfig, capturedTablesOf } from "../../config/capturedTables.ts"
import type { SqlIdentifier } from "../../config/Identifiers.ts"
import { publicationNameOf, type PipelineConfig, slotNameOf } from "../../config/PipelineConfig.ts"
import { captureStatePath } from "../../layers/postgres/logical/captureState.ts"
import { type PgSettings, pgSettingsOf } from "../../layers/postgres/logical/pgConnection.ts"
import type { PgSsl } from "../../layers/postgres/pgTls.ts"

export interface LogicalCaptureSettings {
  readonly pg: PgSettings
  readonly table: SqlIdentifier
  /** Tables captured beside the orders table (`tables:`), through the same slot and publication. */
  readonly tables: ReadonlyArray<CapturedTableConfig>
  readonly publication: SqlIdentifier
  readonly slot: string
  readonly statePath: string
  readonly snapshotChunk: number
  /** Streamed changes per publish (several small transactions share one send). */
  readonly batchSize: number
  readonly heartbeat: Duration.Duration
  readonly slotLagWarnBytes: number
  /** `--once`: snapshot if needed, stream what was committed before the start, confirm, stop. */
  readonly once: boolean
  /** `--resnapshot`: drop the slot and the state, then start over with a new snapshot. */
  readonly resnapshot: boolean
  /** `--resnapshot-table`: these tables of `tables:` (`schema.name`) are snapshotted again, as if added now. */
  readonly resnapshotTables: ReadonlyArray<string>
}

export const logicalCaptureSettingsOf = (
  config: PipelineConfig,
  flags: { readonly once: boolean; readonly resnapshot: boolean; readonly resnapshotTables?: ReadonlyArray<string> },
  ssl: PgSsl
): LogicalCaptureSettings => {
  const slot = slotNameOf(config)
  return {
    pg: pgSettingsOf(config, ssl),
    table: config.postgres.table,
    tables: capturedTablesOf(config),
    publication: publicationNameOf(config),
    slot,
    statePath: captureStatePath(config, slot),
    snapshotChunk: config.capture.snapshot_chunk,
    batchSize: config.producer.batch_size,
    heartbeat: Duration.seconds(config.capture.heartbeat_seconds),
    slotLagWarnBytes: Math.round(config.capture.slot_lag_warn_mb * 1024 * 1024),
    once: flags.once,
    resnapshot: flags.resnapshot,
    resnapshotTables: flags.resnapshotTables ?? []
  }
}
