import { Deferred, Duration, Effect, Either, Metric, Schedule } from "effect"
import type { Pgoutput } from "pg-logical-replication"
import type pg from "pg"
import { type ChangeOp, formatLsn, type OrderChange, parseLsn } from "../../domain/Change.ts"
import type { TableChangeOp } from "../../domain/TableChange.ts"
import type { Micros } from "../../domain/Timestamp.ts"
import { CaptureError, resnapshotHint } from "../../layers/postgres/logical/CaptureError.ts"
import { query } from "../../layers/postgres/logical/pgConnection.ts"
import { checkRelation, missingColumns, orderIdOf, tupleToOrder } from "../../layers/postgres/logical/pgoutputDecoding.ts"
import type { CapturedTable } from "../../layers/postgres/logical/preflight.ts"
import { checkSourceTable, tableReplaced } from "../../layers/postgres/logical/sourceTableCheck.ts"
import { awaitSlotFree, slotStatus } from "../../layers/postgres/logical/replicationSlot.ts"
import { openReplicationStream, type ReplicationStream } from "../../layers/postgres/logical/replicationStream.ts"
import {
  captureLagSeconds,
  capturedByOp,
  publishedByOp,
  rowsSkipped,
  slotRetainedBytes,
  slotUnconfirmedBytes
} from "../../observability/captureMetrics.ts"
import { reportHealth } from "../../observability/Health.ts"
import { ordersCaptured, ordersPublished } from "../../observability/metrics.ts"
import { crashPoint } from "../../runtime/crashPoints.ts"
import { stepRetry } from "../../runtime/schedules.ts"
import { OrderPublisher } from "../../services/OrderPublisher.ts"
import { TableChangePublisher } from "../../services/TableChangePublisher.ts"
import type { LogicalCaptureSettings } from "./captureSettings.ts"
import { type CapturedSource, followRelation, rowChange, schemaMarker } from "./capturedSources.ts"
import { type CapturedChange, isTableChange, PendingChanges } from "./pendingChanges.ts"

/** The prefix of our heartbeat messages (pg_logical_emit_message, non-transactional). */
export const heartbeatPrefix = "food-orders-heartbeat"

const emitHeartbeat = (pool: pg.Pool, slot: string) =>
  query<{ lsn: string }>(pool, `SELECT pg_logical_emit_message(false, $1, $2)::text AS lsn`, [
    heartbeatPrefix,
    JSON.stringify({ slot, at: new Date().toISOString() })
  ]).pipe(Effect.map(([row]) => parseLsn(row!.lsn)!))

/**
 * Every heartbeat_seconds: a heartbeat into the WAL (it comes back through the stream, in order,
 * and lets an idle producer confirm its position even when the library's keepalives cannot be
 * used), and a look at the slot: lag gauges, a warning past slot_lag_warn_mb, and a stop when the
 * slot vanished or was invalidated. A database that does not answer is logged and tried again.
 */
const monitorSlot = (pool: pg.Pool, settings: LogicalCaptureSettings, confirmedAt: () => number, fatal: Deferred.Deferred<never, CaptureError>) => {
  let lastWarning = 0
  return Effect.gen(function*() {
    yield* emitHeartbeat(pool, settings.slot)
    const status = yield* slotStatus(pool, settings.slot)
    if (status === null || status.walStatus === "lost") {
      return yield* Deferred.fail(fatal, new CaptureError({
        reason: "slot-lost",
        detail: `replication slot ${settings.slot} ${status === null ? "was dropped" : "was invalidated (wal_status lost)"} while streaming: ` +
          `changes may be missing from the topic. Publish the table again: ${resnapshotHint}`
      }))
    }
    if (status.retainedBytes !== null) yield* Metric.set(slotRetainedBytes, status.retainedBytes)
    if (status.unconfirmedBytes !== null) yield* Metric.set(slotUnconfirmedBytes, status.unconfirmedBytes)
    yield* Metric.set(captureLagSeconds, Math.max(0, (Date.now() - confirmedAt()) / 1000))
    if (status.retainedBytes !== null && status.retainedBytes > settings.slotLagWarnBytes && Date.now() - lastWarning > 60_000) {
      lastWarning = Date.now()
      yield* Effect.logWarning("replication slot retains much WAL").pipe(Effect.annotateLogs({
        slot: settings.slot,
        retained_mb: Math.round(status.retainedBytes / 1024 / 1024),
        warn_mb: Math.round(settings.slotLagWarnBytes / 1024 / 1024),
        wal_status: status.walStatus
      }))
    }
  }).pipe(
    Effect.catchTag("CaptureError", (error) =>
      Effect.logWarning("slot check failed").pipe(Effect.annotateLogs({ error: error.message }))),
    Effect.repeat(Schedule.spaced(settings.heartbeat))
  )
}


/**
 * One replication connection, from the slot's confirmed position until it fails (a lost connection:
 * the caller reconnects with backoff) or, with `once`, until everything committed before the start
 * is published and confirmed. Streamed changes are published in commit order, several transactions
 * per send when they queue up, a large transaction in batch_size pieces before its COMMIT arrives
 * (its change keys are known from BEGIN, the epoch from the slot's creation); the slot is confirmed
 * only to COMMITs whose changes the broker has acknowledged.
 */
export const streamSession = (
  pool: pg.Pool,
  settings: LogicalCaptureSettings,
  table: CapturedTable,
  sources: ReadonlyArray<CapturedSource>,
  epoch: number,
  onStreaming: () => void = () => undefined
) =>
  Effect.scoped(Effect.gen(function*() {
    const publisher = yield* OrderPublisher
    const tablePublisher = yield* TableChangePublisher
    const status = yield* awaitSlotFree(pool, settings.slot)
    if (status === null) {
      return yield* new CaptureError({
        reason: "slot-lost",
        detail: `replication slot ${settings.slot} does not exist any more: changes may be missing from the topic. Publish the table again: ${resnapshotHint}`
      })
    }
    const startedAt = status.confirmedFlush ?? 0n
    // The slot is confirmed only up to a position where the table was last checked to be the one
    // captured: a dropped or recreated table's changes just stop arriving, nothing in the stream says so.
    const checkAll = Effect.gen(function*() {
      let to = yield* checkSourceTable(pool, table, settings.publication)
      for (const source of sources) {
        const at = yield* checkSourceTable(pool, source.table, settings.publication)
        if (at < to) to = at
      }
      return to
    })
    let checkedTo = yield* checkAll
    let checkedAt = Date.now()
    const stream: ReplicationStream = yield* openReplicationStream(settings.pg, settings.slot, settings.publication, {
      confirmed: startedAt,
      statusInterval: Duration.min(settings.heartbeat, Duration.seconds(10))
    })
    yield* reportHealth("database", { ok: true })
    onStreaming()
    yield* Effect.logInfo("streaming changes").pipe(Effect.annotateLogs({ slot: settings.slot, from: formatLsn(startedAt) }))
    const pending = new PendingChanges(startedAt, epoch)
    let confirmedAt = Date.now()
    const fatal = yield* Deferred.make<never, CaptureError>()
    yield* Effect.forkScoped(monitorSlot(pool, settings, () => confirmedAt, fatal))
    // --once: a heartbeat written now; once it comes back, everything committed before it has too.
    const stopAt = settings.once ? yield* emitHeartbeat(pool, settings.slot) : null
    let lastCommitTime: Micros | null = null
    let reportedColumns = ""
    let published = 0

    /** `lsn`, or less when the table was not checked that far (at most one check a second, or now with `force`). */
    const checked = (lsn: bigint, force: boolean) =>
      Effect.gen(function*() {
        if (lsn > checkedTo && (force || Date.now() - checkedAt >= 1_000)) {
          checkedAt = Date.now()
          checkedTo = yield* checkAll.pipe(
            Effect.catchIf((error) => error.reason === "connection", (error) =>
              Effect.logWarning("source table check failed; the slot is confirmed once it passes").pipe(
                Effect.annotateLogs({ error: error.message }),
                Effect.as(checkedTo)
              ))
          )
        }
        return lsn < checkedTo ? lsn : checkedTo
      })

    const flush = (backlog: boolean, force = false) =>
      Effect.gen(function*() {
        const { changes, confirmTo } = pending.take()
        if (changes.length === 0 && confirmTo === null) return
        const commitTime = lastCommitTime
        yield* Effect.uninterruptible(Effect.gen(function*() {
          if (changes.length > 0) {
            const tableChanges = changes.filter(isTableChange)
            const orderChanges = tableChanges.length === 0 ? changes as ReadonlyArray<OrderChange> : changes.filter((c): c is OrderChange => !isTableChange(c))
            yield* Effect.all([
              orderChanges.length === 0 ? Effect.void : publisher.publishChanges(orderChanges, { backlog }),
              tableChanges.length === 0 ? Effect.void : tablePublisher.publish(tableChanges, { backlog })
            ], { discard: true }).pipe(
              Effect.retry(stepRetry),
              Effect.tapBoth({
                onFailure: (error) => reportHealth("broker", { ok: false, error: error.message }),
                onSuccess: () => reportHealth("broker", { ok: true })
              })
            )
            yield* crashPoint("producer.after-publish")
          }
          const to = confirmTo === null ? null : yield* checked(confirmTo, force)
          if (to !== null && to > pending.acknowledged) {
            yield* stream.confirm(to)
            pending.confirmedTo(to)
            if (commitTime !== null && to === confirmTo) confirmedAt = Math.max(confirmedAt, Number(commitTime / 1000n))
          }
        }))
        published += changes.length
        const counts = new Map<ChangeOp, number>()
        for (const change of changes) if (change.op !== "schema") counts.set(change.op, (counts.get(change.op) ?? 0) + 1)
        for (const [op, n] of counts) yield* Metric.incrementBy(publishedByOp[op], n)
        yield* Metric.incrementBy(ordersPublished, changes.length)
      })

    const capture = (change: CapturedChange) =>
      (change.op === "schema" ? Effect.void : Effect.zipRight(Metric.increment(capturedByOp[change.op]), Metric.increment(ordersCaptured))).pipe(
        Effect.zipRight(Effect.sync(() => pending.add(change)))
      )

    const skip = (problem: string) =>
      Effect.logWarning("captured row is not an order; not published").pipe(
        Effect.annotateLogs({ problem, lsn: formatLsn(pending.transaction?.commitLsn ?? 0n) }),
        Effect.zipRight(Metric.increment(rowsSkipped))
      )

    const change = (op: OrderChange["op"], orderId: number, tuple: Record<string, unknown> | null) =>
      Effect.gen(function*() {
        const missing = tuple === null ? [] : missingColumns(tuple)
        if (missing.length > 0) {
          // Skipping it would lose the update; publishing it would blank the column.
          return yield* new CaptureError({
            reason: "incomplete-row",
            detail: `the ${op} of order ${orderId} in table ${table.schema}.${table.name} arrived without column ${missing.join(", ")} ` +
              `(a value stored out of line and unchanged: the table's REPLICA IDENTITY is not FULL). Capture stopped before publishing ` +
              `or confirming it; the slot would send it the same way again. Run ALTER TABLE "${table.name}" REPLICA IDENTITY FULL ` +
              `(on each partition of a partitioned table), then publish the table again: ${resnapshotHint}`
          })
        }
        const key = pending.nextKey()
        const tx = pending.transaction!
        const order = tuple === null ? Either.right(null) : tupleToOrder(tuple)
        if (Either.isLeft(order)) return yield* skip(order.left)
        yield* capture({ op, orderId, order: order.right, key, commitTime: tx.commitTime, xid: tx.xid })
      })

    const onRelation = (message: Pgoutput.MessageRelation) =>
      Effect.gen(function*() {
        const check = checkRelation(message.columns)
        if (!check.ok) {
          return yield* new CaptureError({
            reason: "relation-changed",
            detail: `table ${message.name} no longer matches the order contract (${check.problem}); capture stopped before publishing ` +
              `anything past it. Restore the column, then restart the producer (the slot keeps the changes)`
          })
        }
        const extra = check.extra.join(",")
        if (extra !== reportedColumns) {
          reportedColumns = extra
          if (extra !== "") {
            yield* Effect.logWarning("captured table has columns beyond the contract; messages keep the seven fields").pipe(
              Effect.annotateLogs({ table: message.name, extra_columns: extra })
            )
          }
        }
      })

    /**
     * Which captured table a relation is, by schema and name (a partitioned table's changes come under
     * its root's): "orders", a table of `tables:`, or null for another table of the publication. Our
     * name under another oid, or our oid under another name: capture stops.
     */
    const capturedOf = (relation: Pgoutput.MessageRelation): Effect.Effect<"orders" | CapturedSource | null, CaptureError> => {
      for (const candidate of [table, ...sources.map((source) => source.table)]) {
        const sameName = relation.schema === candidate.schema && relation.name === candidate.name
        if (!sameName && relation.relationOid !== candidate.oid) continue
        if (!sameName) {
          return Effect.fail(tableReplaced(candidate, settings.publication, `was renamed to ${relation.schema}.${relation.name}`))
        }
        if (relation.relationOid !== candidate.oid) {
          return Effect.fail(tableReplaced(candidate, settings.publication, `was dropped and created again (oid ${candidate.oid} at start, a change of oid ${relation.relationOid} arrived)`))
        }
        return Effect.succeed(candidate === table ? "orders" : sources.find((source) => source.table === candidate)!)
      }
      return Effect.succeed(null)
    }
    const isCaptured = (relation: Pgoutput.MessageRelation) => Effect.map(capturedOf(relation), (which) => which === "orders")

    /**
     * A change of a table of `tables:`. A row that cannot be encoded (a key column dropped or
     * retyped: the consumer stops that table at the schema marker before it) is skipped and logged.
     */
    const sourceChange = (
      source: CapturedSource,
      op: TableChangeOp,
      tuple: Record<string, unknown> | null,
      keyTuple: Record<string, unknown> | null
    ) =>
      Effect.gen(function*() {
        const tx = pending.transaction!
        const missing = tuple === null ? [] : source.schema.columns.filter((c) => tuple[c.name] === undefined).map((c) => c.name)
        if (missing.length > 0) {
          return yield* new CaptureError({
            reason: "incomplete-row",
            detail: `the ${op} of a row of table ${source.config.display} arrived without column ${missing.join(", ")} ` +
              `(a value stored out of line and unchanged: the table's REPLICA IDENTITY is not FULL). Capture stopped before publishing ` +
              `or confirming it. Run ALTER TABLE ${source.table.schema}.${source.table.name} REPLICA IDENTITY FULL, then publish the table again: ${resnapshotHint}`
          })
        }
        const built = Either.try(() => rowChange(source, op, tuple, keyTuple, pending.peekKey(), tx.commitTime, tx.xid))
        if (Either.isLeft(built)) {
          return yield* Effect.logWarning("captured row cannot be encoded; not published").pipe(
            Effect.annotateLogs({ table: source.config.display, op, problem: String(built.left), lsn: formatLsn(tx.commitLsn) }),
            Effect.zipRight(Metric.increment(rowsSkipped))
          )
        }
        // The key is taken only now: a row not published leaves no gap a replay would fill differently.
        yield* capture({ ...built.right, key: pending.nextKey() })
      })

    const onSourceRow = (source: CapturedSource, message: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete) =>
      Effect.gen(function*() {
        switch (message.tag) {
          case "insert":
            return yield* sourceChange(source, "insert", message.new, message.new)
          case "update": {
            // The key changed: the old key's row is gone, as far as anyone reading by key can tell.
            const before = message.key ?? message.old
            if (before !== null && source.schema.key.some((name) => before[name] !== undefined && before[name] !== message.new[name])) {
              yield* sourceChange(source, "delete", null, before)
            }
            return yield* sourceChange(source, "update", message.new, message.new)
          }
          case "delete":
            return yield* sourceChange(source, "delete", null, message.key ?? message.old)
        }
      })

    const onRow = (message: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete) =>
      Effect.gen(function*() {
        const which = yield* capturedOf(message.relation)
        if (which === null) return
        if (which !== "orders") return yield* onSourceRow(which, message)
        switch (message.tag) {
          case "insert": {
            const id = orderIdOf(message.new)
            if (id === undefined) return yield* skip(`insert without an order_id: ${JSON.stringify(message.new["order_id"])}`)
            return yield* change("insert", id, message.new)
          }
          case "update": {
            const id = orderIdOf(message.new)
            if (id === undefined) return yield* skip(`update without an order_id: ${JSON.stringify(message.new["order_id"])}`)
            // The key changed: the old order_id is gone, as far as anyone reading by order_id can tell.
            const before = orderIdOf(message.key ?? message.old)
            if (before !== undefined && before !== id) yield* change("delete", before, null)
            return yield* change("update", id, message.new)
          }
          case "delete": {
            const id = orderIdOf(message.key ?? message.old)
            if (id === undefined) return yield* skip("delete without the order_id (replica identity?)")
            return yield* change("delete", id, null)
          }
        }
      })

    /** A position the server has sent everything before; confirmed when nothing is pending. */
    const onPosition = (lsn: bigint, force = false) =>
      Effect.gen(function*() {
        if (pending.transaction !== null) return
        yield* flush(false, force)
        const confirmable = pending.idleConfirmable(lsn)
        const to = confirmable === null ? null : yield* checked(confirmable, force)
        if (to !== null && to > pending.acknowledged) {
          yield* stream.confirm(to)
          pending.confirmedTo(to)
        }
      })

    while (true) {
      const item = yield* Effect.raceFirst(stream.take, Deferred.await(fatal))
      if (item._tag === "keepalive") {
        yield* onPosition(item.walEnd)
        continue
      }
      const message = item.message
      switch (message.tag) {
        case "begin":
          pending.begin(parseLsn(message.commitLsn!)!, message.xid, message.commitTime as Micros)
          break
        case "commit": {
          pending.commit(parseLsn(message.commitEndLsn!)!)
          lastCommitTime = message.commitTime as Micros
          const waiting = yield* stream.waiting
          // Alone: publish now (latency). Others queued behind it: let them join the send. The backlog
          // flag (the consumer then keeps its batch open for backlog_linger_ms) only for a full batch:
          // under steady traffic something is nearly always queued, and flagging that held every
          // lake batch open for seconds (update-heavy load at 1,000 orders/s: p99 7.2 s).
          if (waiting === 0 || pending.size >= settings.batchSize) yield* flush(pending.size >= settings.batchSize)
          break
        }
        case "relation": {
          const which = yield* capturedOf(message)
          if (which === "orders") yield* onRelation(message)
          else if (which !== null && pending.transaction !== null) {
            // The columns of the rows that follow: every partition hears of them first. Keyed as the
            // change after it (a Relation always precedes one), so the rows' keys never depend on it.
            yield* followRelation(pool, which, message)
            const tx = pending.transaction!
            yield* capture(schemaMarker(which, pending.peekKey(), tx.commitTime, tx.xid))
          }
          break
        }
        case "insert":
        case "update":
        case "delete":
          yield* onRow(message)
          if (pending.size >= settings.batchSize) yield* flush(true)
          break
        case "message": {
          if (message.transactional) break
          const lsn = parseLsn(message.messageLsn ?? "")
          if (lsn === undefined) break
          if (message.prefix === heartbeatPrefix) {
            try {
              const beat = JSON.parse(new TextDecoder().decode(message.content)) as { slot?: string; at?: string }
              if (beat.slot === settings.slot && beat.at !== undefined) confirmedAt = Math.max(confirmedAt, Date.parse(beat.at))
            } catch {
              // another program's message under our prefix: only its position counts
            }
          }
          const stopping = stopAt !== null && lsn >= stopAt && pending.transaction === null
          // --once ends confirmed up to where it caught up, as a run without the table check did.
          yield* onPosition(lsn, stopping)
          if (stopping) {
            yield* Effect.logInfo("caught up").pipe(Effect.annotateLogs({
              slot: settings.slot,
              confirmed: formatLsn(pending.acknowledged),
              published,
              max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024)
            }))
            return { published }
          }
          break
        }
        case "truncate":
          // One message for every table of the statement (several, or CASCADE): only ours counts.
          // Matched as rows are (isCaptured): a recreated or renamed table stops capture here too.
          for (const relation of message.relations) {
            const which = relation === undefined ? null : yield* capturedOf(relation)
            if (which === null || which === "orders") continue
            yield* Effect.logWarning("TRUNCATE of a captured table: published as a marker to every partition").pipe(
              Effect.annotateLogs({ table: which.config.display, lsn: formatLsn(pending.transaction?.commitLsn ?? 0n) })
            )
            yield* sourceChange(which, "truncate", null, null)
          }
          if (yield* Effect.exists(message.relations, (relation) => relation === undefined ? Effect.succeed(false) : isCaptured(relation))) {
            yield* Effect.logWarning("TRUNCATE of the captured table: published as a marker to every partition").pipe(
              Effect.annotateLogs({ table: table.name, lsn: formatLsn(pending.transaction?.commitLsn ?? 0n) })
            )
            yield* change("truncate", 0, null)
            if (pending.size >= settings.batchSize) yield* flush(true)
          }
          break
        default:
          break
      }
    }
  }))
