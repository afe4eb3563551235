import { Effect, Metric, Option, Schema } from "effect"
import * as Path from "node:path"
import type pg from "pg"
import type { CapturedTableConfig } from "../../config/capturedTables.ts"
import type { ChangeKey } from "../../domain/Change.ts"
import type { TableSchema } from "../../domain/columns.ts"
import { schemaJsonOf, type TableChange } from "../../domain/TableChange.ts"
import { jsonFile } from "../../layers/file/jsonFile.ts"
import { CaptureError, isTransientCapture } from "../../layers/postgres/logical/CaptureError.ts"
import { keyJson, rowJson } from "../../layers/postgres/pgText.ts"
import { readTableSchema } from "../../layers/postgres/tableCatalog.ts"
import {
  keysAboveSequence,
  type PollKey,
  pollKeyOf,
  readRowsAfter,
  readSequenceHolders,
  readSequenceValue,
  tableOidOf
} from "../../layers/postgres/tablePollQuery.ts"
import { capturedByOp, publishedByOp } from "../../observability/captureMetrics.ts"
import { reportHealth } from "../../observability/Health.ts"
import { onceBackoff, outageBackoff } from "../../runtime/schedules.ts"
import { TableChangePublisher } from "../../services/TableChangePublisher.ts"
import { publishThenSave } from "./publishThenSave.ts"

/**
 * capture.mode poll for the tables of `tables:`: one loop per table publishes its new rows, by key,
 * up to the bound that no late commit can fall below (tablePollQuery.ts), as `insert` changes to
 * the table's topic, each batch preceded by a schema marker when the columns are new to this run.
 * Updates and deletes are not seen by polling (capture.mode logical sees them).
 */

/** Where a table's poll capture stands, saved after each batch the broker acknowledged. */
export const TablePollState = Schema.Struct({
  /** pg_class oid: another one means the table was dropped and created again. */
  oid: Schema.Number,
  /** Orders this capture's change keys above any earlier capture's of the table (logical or poll). */
  epoch: Schema.Number,
  /** The last key published, as decimal text; null before the first. */
  last_key: Schema.NullOr(Schema.String),
  rows: Schema.Number
})
export type TablePollState = typeof TablePollState.Type

/** `<table>.poll.json` beside the orders' poll cursor (streaming.last_processed_timestamp_location). */
export const tablePollStatePath = (cursorLocation: string, table: CapturedTableConfig) =>
  Path.join(Path.dirname(cursorLocation), `${table.display}.poll.json`)

/**
 * A row's change key: no LSN (the history's _commit_lsn is 0), and the row's key as its place in the
 * capture order (the history's _change_seq). A change key's seq holds up to 15 digits.
 */
export const pollChangeKey = (epoch: number, key: bigint): ChangeKey => ({ epoch, lsn: 0n, phase: 1, seq: Number(key) })

export const maxPollKey = 10n ** 15n - 1n

export interface TablePollOptions {
  readonly batchSize: number
  readonly cursorLocation: string
  /** How long a cycle waits for the transactions open at its sequence reading to end. */
  readonly horizonWaitMs: number
  /** `--resnapshot-table`: start again from the first key, under a new epoch. */
  readonly resnapshot?: boolean
}

/** A value of the sequence, and the transactions that held it just after it was read. */
interface Reading {
  readonly value: bigint
  readonly holders: ReadonlyArray<string>
}

const heldBackWarningMs = 30_000
const explicitKeysWarningMs = 5 * 60_000

/**
 * One table's poll capture: `cycle` publishes every row below the bound now and returns how many.
 * The state is loaded once; readings of the sequence are kept between cycles so that a cycle held
 * back by a long transaction still publishes up to an older reading.
 */
export const makeTablePoller = (pool: pg.Pool, table: CapturedTableConfig, options: TablePollOptions) =>
  Effect.gen(function*() {
    const file = jsonFile(tablePollStatePath(options.cursorLocation, table), TablePollState)
    let state = Option.getOrNull(yield* file.load)
    if (options.resnapshot === true && state !== null) {
      yield* Effect.logInfo("table to be published again from its first key").pipe(Effect.annotateLogs({ table: table.display, last_key: state.last_key }))
      state = null
    }
    const readings: Array<Reading> = []
    // The schema this run last put on the topic: every run announces its columns before its first row.
    let announced: string | null = null
    let heldBackSince: number | null = null
    let lastExplicitWarning = 0

    const schemaNow = Effect.gen(function*() {
      const oid = yield* tableOidOf(pool, table.ref)
      if (oid === undefined) return yield* new CaptureError({ reason: "misconfigured", detail: `table ${table.display} does not exist (or is not a table)` })
      const schema = yield* readTableSchema(pool, table.ref, table.key)
      return { oid, schema }
    })

    /**
     * The newest sequence value below which every key's transaction has ended (tablePollQuery.ts);
     * waits up to horizonWaitMs for the transactions holding the sequence now, which are short in
     * the usual case. undefined: held back (by a long transaction that took a key, or a prepared one).
     */
    const boundNow = (key: PollKey) =>
      Effect.gen(function*() {
        const value = yield* readSequenceValue(pool, key)
        let now = yield* readSequenceHolders(pool, key)
        readings.push({ value, holders: now.holders })
        const newestUsable = () => {
          if (now.prepared) return -1
          const holding = new Set(now.holders)
          let i = readings.length - 1
          // A transaction that held the sequence at an older reading and still runs held it at every later one too.
          while (i >= 0 && readings[i]!.holders.some((holder) => holding.has(holder))) i -= 1
          return i
        }
        const waitUntil = Date.now() + options.horizonWaitMs
        while (newestUsable() < readings.length - 1 && Date.now() < waitUntil) {
          yield* Effect.sleep("20 millis")
          now = yield* readSequenceHolders(pool, key)
        }
        const usable = newestUsable()
        if (usable < 0) return undefined
        // Older readings are covered by this one.
        readings.splice(0, usable)
        return readings[0]!.value
      })

    const publish = (changes: ReadonlyArray<TableChange>, next: TablePollState, backlog: boolean) =>
      Effect.flatMap(TableChangePublisher, (publisher) =>
        publishThenSave(
          publisher.publish(changes, { backlog }),
          Effect.suspend(() => {
            state = next
            return file.save(next)
          })
        ))

    const cycle = Effect.gen(function*() {
      let { oid, schema } = yield* schemaNow
      if (state !== null && state.oid !== oid) {
        yield* Effect.logWarning("captured table was dropped and created again: publishing its rows again from the start").pipe(
          Effect.annotateLogs({ table: table.display, oid_before: state.oid, oid_now: oid })
        )
        state = null
      }
      if (state === null) {
        // Above every epoch before it: the consumer takes the new rows over what an earlier capture wrote.
        state = { oid, epoch: Date.now(), last_key: null, rows: 0 }
        yield* file.save(state)
      }
      let key = yield* pollKeyOf(pool, table.ref, table.display, schema)
      const bound = yield* boundNow(key)
      if (bound === undefined) {
        heldBackSince ??= Date.now()
        if (Date.now() - heldBackSince > heldBackWarningMs) {
          heldBackSince = Date.now()
          yield* Effect.logWarning("table capture held back by an open transaction that took a key from the table's sequence (rows wait until it ends)").pipe(
            Effect.annotateLogs({ table: table.display })
          )
        }
        return 0
      }
      heldBackSince = null
      let published = 0
      while (true) {
        const current: TablePollState = state!
        const after = current.last_key === null ? null : BigInt(current.last_key)
        const rows = yield* readRowsAfter(pool, table.ref, schema, key, after, bound, options.batchSize)
        if (rows.length === 0) break
        // The columns read must be the columns announced: a change between the two catalog reads
        // (ALTER TABLE meanwhile) means the rows are read again with the new ones.
        const again = yield* schemaNow
        if (schemaJsonOf(table.display, again.schema) !== schemaJsonOf(table.display, schema) || again.oid !== oid) {
          ;({ oid, schema } = again)
          if (again.oid !== current.oid) return published
          key = yield* pollKeyOf(pool, table.ref, table.display, schema)
          continue
        }
        yield* Metric.incrementBy(capturedByOp.insert, rows.length)
        const changes: Array<TableChange> = []
        const first = BigInt(rows[0]![key.column]!)
        const described = schemaJsonOf(table.display, schema)
        if (announced !== described) changes.push(schemaMarker(table, described, pollChangeKey(current.epoch, first)))
        for (const row of rows) changes.push(insertChange(table, schema, row, pollChangeKey(current.epoch, BigInt(row[key.column]!))))
        const last = rows[rows.length - 1]![key.column]!
        if (first < 0n || BigInt(last) > maxPollKey) {
          return yield* new CaptureError({
            reason: "misconfigured",
            detail: `${table.display} has key ${first < 0n ? first : last} in ${key.column}: capture.mode poll takes keys from 0 to ${maxPollKey}; capture.mode logical takes any`
          })
        }
        const full = rows.length === options.batchSize
        yield* publish(changes, { ...current, last_key: last, rows: current.rows + rows.length }, full)
        announced = described
        published += rows.length
        yield* Metric.incrementBy(publishedByOp.insert, rows.length)
        if (!full) break
      }
      if (published === 0 && Date.now() - lastExplicitWarning > explicitKeysWarningMs) {
        if (yield* keysAboveSequence(pool, table.ref, key)) {
          lastExplicitWarning = Date.now()
          yield* Effect.logWarning(
            "table holds keys above its sequence's value: rows inserted with explicit keys are not captured by capture.mode poll " +
              `until the sequence passes them (SELECT setval('${key.sequence}', max(${key.column})) FROM the table), and may be missed; capture.mode logical captures them`
          ).pipe(Effect.annotateLogs({ table: table.display }))
        }
      }
      return published
    })

    return {
      cycle: cycle.pipe(
        Effect.tapBoth({
          onFailure: (error) => error instanceof CaptureError ? reportHealth("database", { ok: false, error: error.message }) : Effect.void,
          onSuccess: () => reportHealth("database", { ok: true })
        })
      )
    }
  })

const schemaMarker = (table: CapturedTableConfig, described: string, key: ChangeKey): TableChange => ({
  table: table.display,
  topic: table.topic,
  op: "schema",
  keyJson: null,
  value: described,
  key,
  commitTime: null,
  xid: null
})

const insertChange = (table: CapturedTableConfig, schema: TableSchema, row: Readonly<Record<string, string | null>>, key: ChangeKey): TableChange => ({
  table: table.display,
  topic: table.topic,
  op: "insert",
  keyJson: keyJson(schema, row),
  value: rowJson(schema, row),
  key,
  commitTime: null,
  xid: null
})

const logFailure = (table: CapturedTableConfig) => (error: unknown) =>
  Effect.logWarning("table capture cycle failed; position kept, retrying").pipe(
    Effect.annotateLogs({ table: table.display, error: error instanceof Error ? error.message : String(error) })
  )

/**
 * Runs one table's capture: until interrupted, a cycle every `interval`; with `once`, cycles until one
 * publishes nothing. An outage is retried with backoff from the saved state. A problem that does not
 * fix itself (the table gone, its key unfit, a column of a type the lake cannot hold) stops this
 * table's capture only, logged with what to do; the result says whether it stopped so.
 */
export const pollTable = (
  pool: pg.Pool,
  table: CapturedTableConfig,
  options: TablePollOptions & { readonly intervalMs: number; readonly once: boolean }
) =>
  Effect.gen(function*() {
    const poller = yield* makeTablePoller(pool, table, options)
    const cycle = poller.cycle.pipe(
      Effect.tapError(logFailure(table)),
      Effect.retry({ schedule: options.once ? onceBackoff : outageBackoff(), while: isTransientCapture })
    )
    let total = 0
    while (true) {
      const published = yield* cycle
      total += published
      if (published > 0 || !options.once) {
        yield* Effect.logDebug("table capture cycle").pipe(Effect.annotateLogs({ table: table.display, published }))
      }
      if (options.once && published === 0) break
      if (!options.once) yield* Effect.sleep(options.intervalMs)
    }
    yield* Effect.logInfo("table capture done").pipe(Effect.annotateLogs({ table: table.display, published: total }))
    return "done" as const
  }).pipe(
    // A broker's refusal is not this table's: it stops the producer, as it does the orders' capture.
    Effect.catchIf((error): error is CaptureError => error instanceof CaptureError, (error) =>
      Effect.as(
        Effect.logError("capture of this table stopped; the other tables go on").pipe(
          Effect.annotateLogs({ table: table.display, error: error.message })
        ),
        "stopped" as const
      )
    ),
    Effect.annotateLogs({ program: "producer" })
  )

/**
 * Every table of `tables:` polled on its own, side by side (`pollTable`). Returns the tables whose
 * capture stopped (each logged with its cause), the others having gone on.
 */
export const pollTables = (
  pool: pg.Pool,
  tables: ReadonlyArray<CapturedTableConfig>,
  options: Omit<Parameters<typeof pollTable>[2], "resnapshot">,
  resnapshot: ReadonlyArray<string>
) =>
  Effect.gen(function*() {
    const outcomes = yield* Effect.all(
      tables.map((table) => pollTable(pool, table, { ...options, resnapshot: resnapshot.includes(table.display) })),
      { concurrency: "unbounded" }
    )
    return tables.filter((_, i) => outcomes[i] === "stopped").map((table) => table.display)
  })
