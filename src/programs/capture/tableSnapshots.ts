import { Effect, Metric, Option } from "effect"
import type pg from "pg"
import { formatLsn, parseLsn } from "../../domain/Change.ts"
import type { TableChange } from "../../domain/TableChange.ts"
import { type CaptureState, captureStateFile, type TableSnapshotState } from "../../layers/postgres/logical/captureState.ts"
import { query } from "../../layers/postgres/logical/pgConnection.ts"
import { readTableSnapshot, type TableChunk } from "../../layers/postgres/logical/tableSnapshotReader.ts"
import { capturedByOp, publishedByOp } from "../../observability/captureMetrics.ts"
import { TableChangePublisher } from "../../services/TableChangePublisher.ts"
import type { LogicalCaptureSettings } from "./captureSettings.ts"
import { type CapturedSource, rowChange, schemaMarker } from "./capturedSources.ts"
import { publishThenSave } from "./publishThenSave.ts"

/**
 * Publishes the snapshot of every table captured beside the orders table that has not finished
 * one, each to its topic, and returns the state with them done. Three cases per table:
 * - read with the slot's exported snapshot (`exported`, when the slot was just created): keyed at
 *   the consistent point, like the orders;
 * - resumed after a crash (its state not done): as of now, from its last key, keyed as it began;
 *   rows may show changes committed after its position, which the stream replays after them;
 * - added to a running configuration (no state): keyed at the WAL position read just before its
 *   own snapshot is taken (the publication already holds it), so that the stream's changes of it
 *   committed before that position, all in the snapshot, sort below its rows and are dropped by the
 *   consumer, and those after it sort above. The other tables are not read again.
 * Every table's rows are preceded by a schema marker (its columns), keyed as its next row.
 * State for tables no longer configured is forgotten: listed again later, a table starts over.
 */
export const publishTableSnapshots = (
  pool: pg.Pool,
  settings: LogicalCaptureSettings,
  start: CaptureState,
  sources: ReadonlyArray<CapturedSource>,
  exported: string | null
) =>
  Effect.gen(function*() {
    const file = captureStateFile(settings.statePath)
    const configured = new Set(sources.map((s) => s.config.display))
    let state: CaptureState = { ...start, tables: Object.fromEntries(Object.entries(start.tables).filter(([name]) => configured.has(name))) }
    if (Object.keys(state.tables).length !== Object.keys(start.tables).length) yield* file.save(state)
    for (const source of sources) {
      const name = source.config.display
      let table: TableSnapshotState | undefined = state.tables[name]
      if (table !== undefined && table.oid !== source.table.oid) {
        // Dropped and created again while the producer was stopped: its old rows' deletes are not in the stream.
        yield* Effect.logWarning("captured table was recreated while the producer was stopped: publishing it again from a new snapshot").pipe(
          Effect.annotateLogs({ table: name, oid_before: table.oid, oid_now: source.table.oid })
        )
        table = undefined
      }
      if (table?.done === true) continue
      const reading: "exported" | "resumed" | "added" = table !== undefined ? "resumed" : exported !== null ? "exported" : "added"
      if (table === undefined) {
        const lsn = reading === "exported"
          ? state.consistent_point!
          : (yield* query<{ lsn: string }>(pool, "SELECT pg_current_wal_lsn()::text AS lsn"))[0]!.lsn
        table = { oid: source.table.oid, lsn: formatLsn(parseLsn(lsn)!), done: false, last_key: null, rows: 0, seq: 0 }
        state = { ...state, tables: { ...state.tables, [name]: table } }
        yield* file.save(state)
      }
      const started = Date.now()
      const lsn = parseLsn(table.lsn)!
      let progress = table
      // The schema first, keyed as the row after it: it must not take a sequence number of its own.
      let pending: Array<TableChange> = [schemaMarker(source, { epoch: state.epoch, lsn, phase: 0, seq: progress.seq + 1 }, null, null)]
      const publishChunk = (chunk: TableChunk | null) =>
        Effect.gen(function*() {
          const changes = [...pending]
          pending = []
          let seq = progress.seq
          for (const row of chunk?.rows ?? []) {
            changes.push(rowChange(source, "snapshot", row, row, { epoch: state.epoch, lsn, phase: 0, seq: ++seq }, null, null))
          }
          const rows = chunk?.rows.length ?? 0
          const next: TableSnapshotState = {
            ...progress,
            last_key: chunk === null ? progress.last_key : [...chunk.lastKey],
            rows: progress.rows + rows,
            seq,
            done: chunk === null
          }
          yield* Metric.incrementBy(capturedByOp.snapshot, rows)
          const publisher = yield* TableChangePublisher
          yield* publishThenSave(
            publisher.publish(changes, { backlog: chunk?.full ?? false }),
            Effect.suspend(() => {
              progress = next
              state = { ...state, tables: { ...state.tables, [name]: next } }
              return file.save(state)
            })
          )
          yield* Metric.incrementBy(publishedByOp.snapshot, rows)
        })
      yield* readTableSnapshot(pool, source.config.ref, source.schema, {
        exported: reading === "exported" ? exported : null,
        after: progress.last_key,
        chunk: settings.snapshotChunk
      }, publishChunk)
      yield* publishChunk(null)
      yield* Effect.logInfo("table snapshot published").pipe(Effect.annotateLogs({
        table: name,
        topic: source.config.topic,
        reading,
        position: progress.lsn,
        rows: progress.rows,
        ms: Date.now() - started
      }))
    }
    return state
  })

/**
 * `--resnapshot-table`: forgets the named tables' snapshots, so that they are published again as a
 * table added to a running configuration is (keyed at the WAL position read before the new
 * snapshot: the stream's older changes of them sort below it). The slot, the orders and the other
 * tables are untouched. Without a state there is nothing to forget: every table gets a snapshot.
 */
export const forgetTableSnapshots = (settings: LogicalCaptureSettings) =>
  Effect.gen(function*() {
    const file = captureStateFile(settings.statePath)
    const state = Option.getOrNull(yield* file.load)
    if (state === null) return
    const forgotten = settings.resnapshotTables.filter((name) => state.tables[name] !== undefined)
    yield* file.save({ ...state, tables: Object.fromEntries(Object.entries(state.tables).filter(([name]) => !settings.resnapshotTables.includes(name))) })
    yield* Effect.logInfo("tables to be published again from a new snapshot").pipe(Effect.annotateLogs({
      tables: settings.resnapshotTables.join(","),
      had_snapshot: forgotten.join(",")
    }))
  })
