import { Clock, Effect, Metric, Option } from "effect"
import type pg from "pg"
import { formatLsn, type OrderChange, parseLsn } from "../../domain/Change.ts"
import { CaptureError, resnapshotHint } from "../../layers/postgres/logical/CaptureError.ts"
import { type CaptureState, captureStateFile, newEpoch } from "../../layers/postgres/logical/captureState.ts"
import type { CapturedTable } from "../../layers/postgres/logical/preflight.ts"
import { createSlotWithSnapshot, dropSlot, slotStatus } from "../../layers/postgres/logical/replicationSlot.ts"
import { readSnapshot, type SnapshotChunk } from "../../layers/postgres/logical/snapshotReader.ts"
import { tableReplaced } from "../../layers/postgres/logical/sourceTableCheck.ts"
import { capturedByOp, publishedByOp, rowsSkipped } from "../../observability/captureMetrics.ts"
import { ordersCaptured, ordersPublished } from "../../observability/metrics.ts"
import { OrderPublisher } from "../../services/OrderPublisher.ts"
import type { LogicalCaptureSettings } from "./captureSettings.ts"
import type { CapturedSource } from "./capturedSources.ts"
import { publishTableSnapshots } from "./tableSnapshots.ts"
import { publishThenSave } from "./publishThenSave.ts"

const slotLost = (settings: LogicalCaptureSettings, what: string) =>
  new CaptureError({
    reason: "slot-lost",
    detail: `replication slot ${settings.slot} ${what}: changes committed since the producer's last position may be missing ` +
      `from the topic. Publish the table again from a new snapshot: ${resnapshotHint} (drops the slot if any and re-reads the table)`
  })

/**
 * Publishes one chunk of the snapshot (op snapshot, key: the slot's epoch, the consistent point,
 * phase 0, the order_id), then records it as done. Publish and save run uninterruptibly: a shutdown
 * finishes them.
 */
const publishChunk = (settings: LogicalCaptureSettings, state: CaptureState, consistentPoint: bigint, chunk: SnapshotChunk) =>
  Effect.gen(function*() {
    const publisher = yield* OrderPublisher
    const file = captureStateFile(settings.statePath)
    for (const skip of chunk.skipped) {
      yield* Effect.logWarning("snapshot row is not an order; not published").pipe(Effect.annotateLogs({ order_id: skip.orderId, problem: skip.problem }))
    }
    if (chunk.skipped.length > 0) yield* Metric.incrementBy(rowsSkipped, chunk.skipped.length)
    const changes: ReadonlyArray<OrderChange> = chunk.orders.map((order) => ({
      op: "snapshot",
      orderId: order.order_id,
      order,
      key: { epoch: state.epoch, lsn: consistentPoint, phase: 0, seq: order.order_id },
      commitTime: null,
      xid: null
    }))
    yield* Metric.incrementBy(capturedByOp.snapshot, changes.length)
    yield* Metric.incrementBy(ordersCaptured, changes.length)
    const next: CaptureState = {
      ...state,
      snapshot: { done: false, last_order_id: chunk.lastOrderId, rows: state.snapshot.rows + changes.length }
    }
    yield* publishThenSave(publisher.publishChanges(changes, { backlog: chunk.full }), file.save(next))
    yield* Metric.incrementBy(publishedByOp.snapshot, changes.length)
    yield* Metric.incrementBy(ordersPublished, changes.length)
    return next
  })

/**
 * Reads (the rest of) the snapshot and publishes it. With `exported`, as of the slot's creation;
 * without it (resuming after a crash mid-snapshot, when the exported snapshot died with its
 * connection) as of now, from the last order_id done. Resumed rows keep the original consistent
 * point in their keys (phase 0, seq order_id), so keys keep increasing; they may already show
 * changes committed after the consistent point, and the stream replays those changes after them
 * (the slot still stands at the consistent point), so each order ends in its latest state.
 */
const publishSnapshot = (pool: pg.Pool, settings: LogicalCaptureSettings, start: CaptureState, exported: string | null) =>
  Effect.gen(function*() {
    const consistentPoint = parseLsn(start.consistent_point!)!
    const started = Date.now()
    let state = start
    yield* readSnapshot(pool, settings.table, { exported, after: state.snapshot.last_order_id, chunk: settings.snapshotChunk }, (chunk) =>
      publishChunk(settings, state, consistentPoint, chunk).pipe(
        Effect.tap((next) =>
          Effect.sync(() => {
            state = next
          })
        ),
        Effect.asVoid
      ))
    const done: CaptureState = { ...state, snapshot: { ...state.snapshot, done: true } }
    yield* captureStateFile(settings.statePath).save(done)
    yield* Effect.logInfo("snapshot published").pipe(Effect.annotateLogs({
      slot: settings.slot,
      epoch: start.epoch,
      consistent_point: start.consistent_point,
      rows: done.snapshot.rows,
      resumed: exported === null,
      ms: Date.now() - started
    }))
    return done
  })

/**
 * `--resnapshot`: drops the slot (if any) and marks the state as "slot being created", so the next
 * step starts over with a new slot and snapshot, of a greater epoch than the dropped one's. Rows
 * deleted while the old slot was not streamed get no tombstone from a snapshot: say so.
 */
export const resetCapture = Effect.fn("LogicalCapture.resetCapture")(function*(pool: pg.Pool, settings: LogicalCaptureSettings) {
  yield* Effect.logWarning("re-snapshot requested: dropping the slot and publishing the whole table again").pipe(
    Effect.annotateLogs({ slot: settings.slot, state_file: settings.statePath })
  )
  yield* dropSlot(pool, settings.slot)
  const file = captureStateFile(settings.statePath)
  // A state file that cannot be read is replaced anyway: the new epoch then comes from the clock alone.
  const previous = Option.getOrNull(yield* file.load.pipe(Effect.orElseSucceed(() => Option.none<CaptureState>())))
  yield* file.save({
    slot: settings.slot,
    epoch: previous?.epoch ?? 0,
    consistent_point: null,
    snapshot: { done: false, last_order_id: null, rows: 0 },
    tables: {}
  })
})

/**
 * Brings the slot and the state file to "snapshot published", whatever a previous run left:
 * nothing (create the slot, publish the snapshot), a slot being created (drop it: nothing of it was
 * published), a snapshot half published (resume it), or a finished one (check the slot is still
 * there and valid: never stream across a gap without saying so).
 */
export const ensureSnapshot = Effect.fn("LogicalCapture.ensureSnapshot")(function*(
  pool: pg.Pool,
  settings: LogicalCaptureSettings,
  table: CapturedTable,
  sources: ReadonlyArray<CapturedSource>
) {
  const file = captureStateFile(settings.statePath)
  const saved = Option.getOrNull(yield* file.load)
  const status = yield* slotStatus(pool, settings.slot)
  if (saved !== null && saved.consistent_point !== null) {
    if (status === null) return yield* slotLost(settings, "does not exist any more (dropped behind the producer's back?)")
    if (status.walStatus === "lost") return yield* slotLost(settings, "was invalidated (wal_status lost: it retained more than max_slot_wal_keep_size)")
    if (status.plugin !== "pgoutput") {
      return yield* new CaptureError({ reason: "misconfigured", detail: `replication slot ${settings.slot} uses plugin ${status.plugin}, not pgoutput` })
    }
    if (saved.table_oid !== undefined && saved.table_oid !== table.oid) {
      return yield* tableReplaced(table, settings.publication, `was dropped and created again while the producer was stopped (oid ${saved.table_oid} when the slot was created, now ${table.oid})`)
    }
    const known: CaptureState = { ...saved, table_oid: table.oid }
    if (saved.table_oid === undefined) yield* file.save(known)
    if (known.snapshot.done) return yield* publishTableSnapshots(pool, settings, known, sources, null)
    yield* Effect.logInfo("resuming the snapshot").pipe(Effect.annotateLogs({
      slot: settings.slot,
      consistent_point: saved.consistent_point,
      after_order_id: saved.snapshot.last_order_id,
      rows_done: saved.snapshot.rows
    }))
    const done = yield* publishSnapshot(pool, settings, known, null)
    return yield* publishTableSnapshots(pool, settings, done, sources, null)
  }
  if (saved === null && status !== null) {
    return yield* new CaptureError({
      reason: "state",
      detail: `replication slot ${settings.slot} exists but the state file ${settings.statePath} does not: it is unknown whether ` +
        `its snapshot was published. Restore the file, or publish the table again: ${resnapshotHint}`
    })
  }
  // A slot left by a run that stopped between creating it and saving its consistent point.
  if (status !== null) yield* dropSlot(pool, settings.slot)
  const creating: CaptureState = {
    slot: settings.slot,
    epoch: saved?.epoch ?? 0,
    consistent_point: null,
    table_oid: table.oid,
    snapshot: { done: false, last_order_id: null, rows: 0 },
    tables: {}
  }
  yield* file.save(creating)
  return yield* Effect.scoped(Effect.gen(function*() {
    const exported = yield* createSlotWithSnapshot(settings.pg, settings.slot)
    const epoch = newEpoch(creating.epoch, yield* Clock.currentTimeMillis)
    const state: CaptureState = { ...creating, epoch, consistent_point: formatLsn(exported.consistentPoint) }
    yield* file.save(state)
    const done = yield* publishSnapshot(pool, settings, state, exported.snapshotName)
    return yield* publishTableSnapshots(pool, settings, done, sources, exported.snapshotName)
  }))
})
