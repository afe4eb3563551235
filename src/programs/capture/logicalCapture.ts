import { Effect, Schedule } from "effect"
import type pg from "pg"
import { CaptureError, isTransientCapture } from "../../layers/postgres/logical/CaptureError.ts"
import { describe, query, queryPool } from "../../layers/postgres/logical/pgConnection.ts"
import { type CapturedTableConfig, quoteTableRef } from "../../config/capturedTables.ts"
import { ensurePublication, inspectTable, preflight } from "../../layers/postgres/logical/preflight.ts"
import { readTableSchema } from "../../layers/postgres/tableCatalog.ts"
import { historyClash } from "../../table/historySchema.ts"
import { deltaNamesProblem } from "../../table/rowsSchema.ts"
import { registerCaptureOps } from "../../observability/captureMetrics.ts"
import { reportHealth } from "../../observability/Health.ts"
import { onceBackoff, outageBackoff } from "../../runtime/schedules.ts"
import { BrokerError } from "../../services/errors.ts"
import type { LogicalCaptureSettings } from "./captureSettings.ts"
import { makeSource } from "./capturedSources.ts"
import { streamSession } from "./changeStream.ts"
import { ensureSnapshot, resetCapture } from "./initialSnapshot.ts"
import { forgetTableSnapshots } from "./tableSnapshots.ts"

/**
 * Transient failures (PostgreSQL or the broker down, the replication connection lost) are logged
 * and retried from the slot, whose confirmed position never passed anything unpublished; the rest
 * (missing privileges, a lost slot, a changed table) stop the program with their message.
 */
const retryingOutages = (settings: LogicalCaptureSettings, step: string, transient: (error: unknown) => boolean = isTransientCapture) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.tapError((error) =>
      transient(error)
        ? Effect.zipRight(
          reportHealth(error instanceof BrokerError ? "broker" : "database", { ok: false, error: describe(error) }),
          Effect.logWarning(`${step} failed; position kept in the slot, retrying`).pipe(Effect.annotateLogs({ error: describe(error) }))
        )
        : Effect.void
    ),
    Effect.retry({ schedule: settings.once ? onceBackoff : outageBackoff().pipe(Schedule.upTo("365 days")), while: transient })
  )

const setUp = (pool: pg.Pool, settings: LogicalCaptureSettings) =>
  Effect.gen(function*() {
    const table = yield* preflight(pool, settings.table, settings.slot)
    const sources = yield* Effect.forEach(settings.tables, (config, i) => inspectSource(pool, config, `tables.${i}`))
    yield* ensurePublication(pool, settings.publication, [table, ...sources.map((source) => source.table)])
    yield* reportHealth("database", { ok: true })
    return { table, sources }
  })

/** A table of `tables:`: what preflight checks of any captured table, and its columns from the catalog. */
const inspectSource = (pool: pg.Pool, config: CapturedTableConfig, configKey: string) =>
  Effect.gen(function*() {
    const [role] = yield* query<{ role: string }>(pool, "SELECT current_user AS role")
    const table = yield* inspectTable(pool, quoteTableRef(config.ref), config.display, `${configKey}.name`, role!.role)
    const schema = yield* readTableSchema(pool, config.ref, config.key)
    const nullableKey = schema.key.filter((name) => schema.columns.find((c) => c.name === name)?.nullable !== false)
    if (nullableKey.length > 0) {
      return yield* new CaptureError({
        reason: "misconfigured",
        detail: `the key of ${config.display} (${configKey}.key) has nullable column ${nullableKey.join(", ")}: a key must identify one row ` +
          `whatever it holds; key it by NOT NULL columns (the primary key by default)`
      })
    }
    const names = deltaNamesProblem(schema)
    if (names !== undefined) {
      return yield* new CaptureError({ reason: "misconfigured", detail: `${config.display} (${configKey}): ${names.message}; rename the column to capture the table` })
    }
    const clash = historyClash(schema)
    if (clash !== undefined) {
      return yield* new CaptureError({ reason: "misconfigured", detail: `${config.display} (${configKey}): ${clash}; rename the column to capture the table` })
    }
    if (config.partitionBy !== undefined) {
      const column = schema.columns.find((c) => c.name === config.partitionBy)
      if (column === undefined || (column.type.kind !== "timestamp" && column.type.kind !== "date")) {
        return yield* new CaptureError({
          reason: "misconfigured",
          detail: `${configKey}.partition_by: ${config.display} ${column === undefined ? `has no column ${config.partitionBy}` : `column ${config.partitionBy} is ${column.pgType}`}; ` +
            `a table is partitioned by the date of a timestamp or date column`
        })
      }
    }
    return makeSource(config, table, schema)
  })

/**
 * capture.mode `logical`: the table's changes through a replication slot. First a consistent
 * snapshot of the table (op snapshot), then every committed insert, update and delete after it,
 * in commit order. With `once`, stops when caught up with what was committed at the start.
 */
export const runLogicalCapture = (settings: LogicalCaptureSettings) =>
  Effect.scoped(Effect.gen(function*() {
    yield* registerCaptureOps
    // The publisher's layer is built only once its producer connected: the broker answered.
    yield* reportHealth("broker", { ok: true })
    const pool = yield* queryPool(settings.pg)
    const { sources, table } = yield* setUp(pool, settings).pipe(retryingOutages(settings, "preflight"))
    if (settings.resnapshot) yield* resetCapture(pool, settings).pipe(retryingOutages(settings, "re-snapshot"))
    if (settings.resnapshotTables.length > 0) yield* forgetTableSnapshots(settings)
    const { epoch } = yield* ensureSnapshot(pool, settings, table, sources).pipe(retryingOutages(settings, "snapshot"))
    // Once this producer has streamed, a busy slot on reconnecting is most likely its own previous
    // walsender, which a cut network leaves standing until wal_sender_timeout: keep trying (each
    // attempt logged with the holder's PID). At start, a busy slot is someone else's: stop.
    let streamed = false
    const transient = (error: unknown) => isTransientCapture(error) || (streamed && error instanceof CaptureError && error.reason === "slot-busy")
    while (true) {
      const result = yield* streamSession(pool, settings, table, sources, epoch, () => {
        streamed = true
      }).pipe(retryingOutages(settings, "streaming", transient))
      if (settings.once) return result
    }
  })).pipe(Effect.annotateLogs({ program: "producer", capture: "logical", slot: settings.slot }))
