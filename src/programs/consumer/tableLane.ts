import { Effect, Metric } from "effect"
import type { CapturedTableConfig } from "../../config/capturedTables.ts"
import type { TableSchema } from "../../domain/columns.ts"
import type { RejectReason } from "../../domain/Rejection.ts"
import { reportHealth } from "../../observability/Health.ts"
import { ordersConsumed, ordersDeadLettered, ordersDuplicates, ordersWritten } from "../../observability/metrics.ts"
import { stepRetry } from "../../runtime/schedules.ts"
import { DeadLetters } from "../../services/DeadLetters.ts"
import type { PartitionPosition } from "../../services/Lake.ts"
import { TableError } from "../../table/tableErrors.ts"
import type { RowsLake } from "../../layers/lake/rowsLake.ts"
import type { BatchOutcome } from "./commitBatch.ts"
import type { BatchWriter } from "./consume.ts"
import { addToTableSplit, openTableSplit, type TableSplit } from "./tableSplit.ts"

const noColumns: TableSchema = { columns: [], key: [] }

/**
 * The consumer's writer for a table captured beside the orders table: its topic's messages into
 * its Delta table and history (rowsLake.ts). Messages are read with the table's columns, which
 * schema markers move on; a change the table cannot follow (a column dropped or retyped) ends the
 * batch before it, and once what came before is committed, the table's stream stops with an error
 * naming the column, while the other tables go on (the caller runs each table on its own).
 */
export const tableWriter = (table: CapturedTableConfig, lake: RowsLake): BatchWriter<TableSplit, unknown, DeadLetters> => ({
  positions: lake.positions,
  setMaintenance: lake.setMaintenance,
  openSplit: (topic, partition, position: PartitionPosition) => openTableSplit(topic, partition, position, lake.schema() ?? noColumns, lake.schemaSince()),
  addToSplit: (split, batch) => {
    addToTableSplit(split, batch)
  },
  commit: (splits) =>
    Effect.gen(function*() {
      const deadLetters = yield* DeadLetters
      const dead = splits.flatMap((split) => split.dead)
      if (dead.length > 0) {
        yield* deadLetters.publish(dead).pipe(
          Effect.retry(stepRetry),
          Effect.tapError((error) => reportHealth("broker", { ok: false, error: error.message }))
        )
      }
      const moved = splits.filter((split) => split.nextOffset !== split.from)
      const positions = new Map<number, PartitionPosition>(
        moved.map((split) => [split.partition, { nextOffset: split.nextOffset, lastCaptureKey: null, lastChangeKey: split.lastChangeKey }])
      )
      let version: number | null = null
      let files = 0
      if (moved.length > 0) {
        const committed = yield* lake.commitBatch(moved.map((split) => ({
          topic: split.topic,
          partition: split.partition,
          from: split.from,
          firstOffset: split.firstOffset ?? split.from,
          lastOffset: split.lastOffset ?? split.from,
          position: positions.get(split.partition)!,
          changes: split.changes,
          schema: split.evolved,
          schemaSince: split.evolved === null ? null : split.schemaSince
        }))).pipe(
          Effect.tapBoth({
            onFailure: (error) => error._tag === "CommitConflict" ? Effect.void : reportHealth("lake", { ok: false, error: error.message }),
            onSuccess: () => reportHealth("lake", { ok: true })
          })
        )
        version = committed.version
        files = committed.files
      }
      const deadLettered: Partial<Record<RejectReason, number>> = {}
      for (const letter of dead) deadLettered[letter.rejection.reason] = (deadLettered[letter.rejection.reason] ?? 0) + 1
      const sum = (f: (split: TableSplit) => number) => splits.reduce((n, split) => n + f(split), 0)
      const outcome = {
        positions,
        version,
        messages: sum((s) => s.messages),
        written: sum((s) => s.written),
        duplicates: sum((s) => s.duplicates),
        deadLettered,
        files
      } satisfies BatchOutcome
      yield* Effect.all([
        Metric.incrementBy(ordersConsumed, outcome.messages),
        Metric.incrementBy(ordersWritten, outcome.written),
        Metric.incrementBy(ordersDuplicates, outcome.duplicates),
        ...Object.entries(deadLettered).map(([reason, n]) => Metric.incrementBy(ordersDeadLettered.pipe(Metric.tagged("reason", reason)), n))
      ], { discard: true })
      const stopped = splits.find((split) => split.stopped !== null)
      if (stopped !== undefined) {
        // Everything before the marker is in the table; nothing after it can be, until the table is
        // published again whole (its files cannot hold the new columns beside the old).
        return yield* new TableError({
          reason: "schema",
          path: table.path,
          detail: `table ${table.display} changed in a way its Delta table cannot follow: ${stopped.stopped!.problem} ` +
            `(topic ${stopped.topic}, partition ${stopped.partition}, offset ${stopped.stopped!.offset}). Its stream stopped there; ` +
            `the other tables go on. The way out is a new snapshot into a new table: stop the producer, delete topic ${table.topic} ` +
            `and move ${table.path} and ${table.changesPath} away, then npm run producer -- --resnapshot-table ${table.display} ` +
            "(the orders and the other tables are not published again)"
        })
      }
      return outcome
    }).pipe(Effect.annotateLogs({ table: table.display }))
})
