import { Context, Effect, Layer, Scope } from "effect"
import type { CapturedTableConfig } from "../../config/capturedTables.ts"
import { type ChangeKey, compareChangeKeys, formatChangeKey, parseChangeKey } from "../../domain/Change.ts"
import type { Row, TableSchema, Value } from "../../domain/columns.ts"
import { partitionOfKey } from "../../domain/orderPartition.ts"
import { keyText } from "../../domain/rowDecode.ts"
import { crashPoint } from "../../runtime/crashPoints.ts"
import type { LakeError, PartitionPosition } from "../../services/Lake.ts"
import type { TableStorage } from "../../services/TableStorage.ts"
import { TableStorage as TableStorageTag } from "../../services/TableStorage.ts"
import type { Action } from "../../table/actions.ts"
import { commit, nothingCommitted } from "../../table/commit.ts"
import { streamFilePath } from "../../table/dataPaths.ts"
import { positionTxns, tablePositions } from "../../table/positions.ts"
import { loadSnapshot } from "../../table/readLog.ts"
import { findRowsByKey, type KeyedFormat, rewriteWithoutKeys } from "../../table/rewrite.ts"
import { historySchemaOf } from "../../table/historySchema.ts"
import { partitionValueOf, rowsFormat } from "../../table/rowsFormat.ts"
import { keyRowOf } from "../../table/rowsKeys.ts"
import { datePartition, evolvedMetadata, noPartition, type PartitionSpec, RowsSchemaError, schemaSinceConfiguration, tableSchemaOfDelta } from "../../table/rowsSchema.ts"
import type { Snapshot } from "../../table/snapshot.ts"
import type { TableFormat } from "../../table/tableFormat.ts"
import { CommitConflict, TableError } from "../../table/tableErrors.ts"
import type { RowChangeAt } from "../../programs/consumer/tableSplit.ts"
import { type DeltaTable, openDeltaTable, type TableSettings } from "./deltaTable.ts"

/** One partition's part of a batch of a table captured beside the orders table. */
export interface RowsBatch {
  readonly topic: string
  readonly partition: number
  readonly from: bigint
  readonly firstOffset: bigint
  readonly lastOffset: bigint
  readonly position: PartitionPosition
  readonly changes: ReadonlyArray<RowChangeAt>
  /** The columns a schema marker of this part added (null: none): committed as the table's new metaData. */
  readonly schema: TableSchema | null
  /** The key of the marker that added them (kept in the metaData: older markers are then no drop). */
  readonly schemaSince: ChangeKey | null
}

export interface RowsLake {
  readonly positions: (topic: string) => Effect.Effect<ReadonlyMap<number, PartitionPosition>, LakeError>
  /** The table's columns (null while there is no table yet: its first schema marker creates it). */
  readonly schema: () => TableSchema | null
  /** The key of the schema marker that gave the table its newest columns (null: not known). */
  readonly schemaSince: () => ChangeKey | null
  readonly commitBatch: (parts: ReadonlyArray<RowsBatch>) => Effect.Effect<{ readonly version: number | null; readonly files: number }, LakeError | CommitConflict>
  readonly setMaintenance: (on: boolean) => Effect.Effect<void>
}

/**
 * A format whose columns follow the table's schema as it grows: the table code holds one format
 * per open table, and an ADD COLUMN must not reopen it. Files written before a column was added read
 * it as null, so the newest format reads every file of the table. A table that still has fewer
 * columns (the commit that adds them is the one being made, or another consumer's is still to come)
 * is ours when its columns are the first of ours.
 */
class LiveFormat {
  schema: TableSchema
  current: TableFormat<Row>
  readonly format: TableFormat<Row>
  constructor(readonly make: (schema: TableSchema) => TableFormat<Row>, initial: TableSchema) {
    this.schema = initial
    this.current = make(initial)
    const self = this
    this.format = {
      get name() {
        return self.current.name
      },
      get protocol() {
        return self.current.protocol
      },
      get partitionColumn() {
        return self.current.partitionColumn
      },
      get keys() {
        return self.current.keys
      },
      metadata: (...args) => self.current.metadata(...args),
      schemaDifference: (schemaString, partitionColumns) => {
        const difference = self.current.schemaDifference(schemaString, partitionColumns)
        if (difference === undefined) return undefined
        const held = dataFieldCount(schemaString, partitionColumns)
        if (held === undefined || held >= self.schema.columns.length) return difference
        return make({ columns: self.schema.columns.slice(0, held), key: self.schema.key }).schemaDifference(schemaString, partitionColumns) === undefined
          ? undefined
          : difference
      },
      writer: (...args) => self.current.writer(...args),
      read: (...args) => self.current.read(...args),
      stats: () => self.current.stats()
    } as TableFormat<Row>
  }

  follow(schema: TableSchema) {
    this.schema = schema
    this.current = this.make(schema)
  }
}

const dataFieldCount = (schemaString: string, partitionColumns: ReadonlyArray<string>): number | undefined => {
  try {
    const fields = (JSON.parse(schemaString) as { fields?: Array<{ name?: unknown }> }).fields
    return Array.isArray(fields) ? fields.filter((f) => !partitionColumns.includes(String(f.name))).length : undefined
  } catch {
    return undefined
  }
}

/** What a table held before the batch's changes, of orders deleted before any other change of theirs. */
const keysDeletedUnseen = (parts: ReadonlyArray<RowsBatch>) => {
  const out = new Set<string>()
  for (const part of parts) {
    const seen = new Set<string>()
    for (const change of part.changes) {
      if (change.keyText === null) continue
      if (change.row === null && !seen.has(change.keyText)) out.add(change.keyText)
      seen.add(change.keyText)
    }
  }
  return out
}

/** The table's format with its row keys (a captured table always has a key: the producer refuses one without). */
const keyed = (format: TableFormat<Row>): KeyedFormat<Row> => {
  if (format.keys === undefined) throw new Error(`table ${format.name} has no key columns`)
  return format as KeyedFormat<Row>
}

const pad = (row: Row, width: number): Row => (row.length >= width ? row : [...row, ...Array.from({ length: width - row.length }, () => null)])

/** Per key, the row after its last change (null: deleted), in the order of the last changes. */
const netRows = (changes: ReadonlyArray<RowChangeAt>) => {
  const net = new Map<string, Row | null>()
  for (const change of changes) {
    if (change.keyText === null) continue
    net.delete(change.keyText)
    net.set(change.keyText, change.row)
  }
  return net
}

/**
 * `makeRowsLake` on the storage `storageFor` gives for the table's path and its history's (a
 * directory, S3), each built in the current scope.
 */
export const openRowsLake = <E>(
  config: CapturedTableConfig,
  settings: TableSettings,
  storageFor: (path: string) => Layer.Layer<TableStorage, E>
) =>
  Effect.gen(function*() {
    const storage = Context.get(yield* Layer.build(storageFor(config.path)), TableStorageTag)
    const history = Context.get(yield* Layer.build(storageFor(config.changesPath)), TableStorageTag)
    return yield* makeRowsLake(config, settings, storage, history, yield* Effect.makeSemaphore(1))
  })

/**
 * The Delta tables of one table captured beside the orders table: its current state (one row per
 * key) and its history (`<path>_changes`: every change, with the row after it, or before it for a
 * delete), each holding its own positions like the orders tables (deltaLake.ts): a batch commits the
 * history first, then the table, and each takes only the messages past its own position.
 */
export const makeRowsLake = (
  config: CapturedTableConfig,
  settings: TableSettings,
  storage: TableStorage["Type"],
  historyStorage: TableStorage["Type"],
  upkeep: Effect.Semaphore
) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    let schema: TableSchema | null = null
    let schemaSince: ChangeKey | null = null
    let spec: PartitionSpec | null = null
    let main: { table: DeltaTable<Row>; live: LiveFormat } | undefined
    let history: { table: DeltaTable<Row>; live: LiveFormat } | undefined
    let maintaining = true

    const formatsOf = (next: TableSchema) =>
      Effect.gen(function*() {
        const partition = spec ?? (config.partitionBy === undefined ? noPartition : datePartition(next, config.partitionBy))
        if (partition instanceof RowsSchemaError) {
          return yield* new TableError({ reason: "schema", path: storage.root, detail: `${config.display}: partition_by ${config.partitionBy}: ${partition.message}` })
        }
        return {
          partition,
          main: (schema: TableSchema) => rowsFormat(config.display, schema, partition),
          history: (schema: TableSchema) => rowsFormat(`${config.display} history`, schema, partition, [])
        }
      })

    /** Opens (creating them with `next`'s columns) the two tables, or moves their formats on to `next`. */
    const follow = (next: TableSchema) =>
      Effect.gen(function*() {
        const formats = yield* formatsOf(next)
        spec = formats.partition
        schema = next
        if (main === undefined) {
          const live = new LiveFormat(formats.main, next)
          main = { table: yield* openDeltaTable(storage, settings, live.format, false, upkeep).pipe(Scope.extend(scope)), live }
          main.table.setMaintenance(maintaining)
        } else main.live.follow(next)
        if (history === undefined) {
          const live = new LiveFormat(formats.history, historySchemaOf(next))
          history = { table: yield* openDeltaTable(historyStorage, settings, live.format, false, upkeep).pipe(Scope.extend(scope)), live }
          history.table.setMaintenance(maintaining)
        } else history.live.follow(historySchemaOf(next))
      })

    // An existing table says what its columns are. The history is committed first: after a crash
    // between the two commits of an ADD COLUMN it has the column and the table not yet.
    const described = (root: string, snapshot: Snapshot) =>
      Effect.gen(function*() {
        if (snapshot.version < 0 || snapshot.metadata === undefined) return undefined
        const held = tableSchemaOfDelta(snapshot.metadata.schemaString, snapshot.metadata.partitionColumns, snapshot.metadata.configuration)
        if (held instanceof RowsSchemaError) {
          return yield* new TableError({ reason: "schema", path: root, detail: `not the table of ${config.display}: ${held.message}` })
        }
        return held
      })
    const sinceOf = (snapshot: Snapshot) => parseChangeKey(snapshot.metadata?.configuration[schemaSinceConfiguration]) ?? null
    const mainSnapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorageTag, storage))
    const existing = yield* described(storage.root, mainSnapshot)
    if (existing !== undefined) {
      const historySnapshot = yield* loadSnapshot().pipe(Effect.provideService(TableStorageTag, historyStorage))
      const ahead = yield* described(historyStorage.root, historySnapshot)
      // The history's, when it is ahead (committed first).
      schemaSince = [sinceOf(mainSnapshot), sinceOf(historySnapshot)].reduce<ChangeKey | null>(
        (a, b) => (a === null || (b !== null && compareChangeKeys(b, a) > 0) ? b : a),
        null
      )
      const historyColumns = ahead === undefined ? [] : ahead.schema.columns.slice(historySchemaOf({ columns: [], key: [] }).columns.length)
      spec = existing.partition
      yield* follow(
        historyColumns.length > existing.schema.columns.length
          ? { columns: [...existing.schema.columns, ...historyColumns.slice(existing.schema.columns.length)], key: existing.schema.key }
          : existing.schema
      )
    }

    /**
     * The metaData action that moves a table on to `next`'s columns (an ADD COLUMN), or none when it
     * has them all: the table's own columns are read from its metaData (another consumer of the group
     * may have added them first).
     */
    const evolution = (snapshot: Snapshot, next: TableSchema): ReadonlyArray<Action> => {
      const metadata = snapshot.metadata
      if (metadata === undefined) return []
      const held = tableSchemaOfDelta(metadata.schemaString, metadata.partitionColumns, metadata.configuration)
      if (held instanceof RowsSchemaError || held.schema.columns.length >= next.columns.length) return []
      const evolved = evolvedMetadata(metadata, next)
      return [{
        metaData: schemaSince === null ? evolved : { ...evolved, configuration: { ...evolved.configuration, [schemaSinceConfiguration]: formatChangeKey(schemaSince) } }
      }]
    }

    const partitionRows = (rows: Iterable<Row>, of: TableSchema) => {
      const valueOf = partitionValueOf(of, spec!)
      const out = new Map<string | null, Array<Row>>()
      for (const row of rows) {
        const value = valueOf === undefined ? null : valueOf(row)
        const group = out.get(value)
        if (group === undefined) out.set(value, [row])
        else group.push(row)
      }
      return out
    }

    const commitHistory = (parts: ReadonlyArray<RowsBatch>, mainAt: ReadonlyMap<number, bigint>, before: ReadonlyMap<string, Row>) =>
      Effect.gen(function*() {
        const { table } = history!
        const started = Date.now()
        const snapshot = yield* table.latest("if-stale")
        const held = tablePositions(snapshot, parts[0]!.topic)
        const fromOf = new Map(parts.map((part) => [part, held.get(part.partition)?.nextOffset ?? mainAt.get(part.partition) ?? part.from]))
        const moving = parts.filter((part) => fromOf.get(part)! < part.position.nextOffset)
        const evolve = evolution(snapshot, historySchemaOf(schema!))
        if (moving.length === 0 && evolve.length === 0) return
        const width = schema!.columns.length
        const staged: Array<Effect.Effect.Success<ReturnType<typeof table.writeFiles>>[number]> = []
        const removeStaged = Effect.suspend(() => Effect.forEach(staged, (f) => table.storage.remove(f.add.add.path).pipe(Effect.ignore), { discard: true }))
        for (const part of moving) {
          const from = fromOf.get(part)!
          const last = new Map<string, Row>()
          const rows: Array<Row> = []
          let emptied = false
          for (const change of part.changes) {
            if (change.op === "truncate") {
              last.clear()
              emptied = true
            }
            const image = change.row ?? (change.keyText === null ? null : last.get(change.keyText) ?? (emptied ? undefined : before.get(change.keyText)) ?? null)
            if (change.keyText !== null) {
              if (change.row !== null) last.set(change.keyText, change.row)
              else last.delete(change.keyText)
            }
            if (change.offset < from) continue
            // A truncate is one row, from partition 0's marker (every partition has one).
            if (change.op === "truncate" && part.partition !== 0) continue
            const values: Array<Value> = [change.op, change.key.lsn, BigInt(change.key.seq), change.commitTime, change.xid === null ? null : BigInt(change.xid)]
            rows.push([...values, ...pad(image ?? [], width)])
          }
          staged.push(...(yield* table.writeFiles(
            (dir) => streamFilePath(dir, part.topic, part.partition, from, part.lastOffset),
            partitionRows(rows, historySchemaOf(schema!))
          ).pipe(Effect.tapError(() => removeStaged))))
        }
        const owners = new Set(moving.map((part) => part.partition))
        const now = Date.now()
        const done = yield* commit(snapshot, {
          actions: [...evolve, ...staged.map((f) => f.add), ...moving.flatMap((part) => positionTxns(part.topic, part.partition, part.position, now))],
          operation: "STREAMING UPDATE",
          operationParameters: { outputMode: "Append", epochId: moving.map((part) => `${part.partition}:${part.position.nextOffset}`).join(",") },
          isBlindAppend: evolve.length === 0,
          format: table.format,
          conflictsWith: txnConflict(parts[0]!.topic, owners)
        }).pipe(Effect.provideService(TableStorageTag, table.storage), Effect.tapError((error) => nothingCommitted(error) ? removeStaged : Effect.void))
        yield* table.committed(done.snapshot, started)
        yield* crashPoint("consumer.after-history-commit")
      })

    const lake: RowsLake = {
      schema: () => schema,
      schemaSince: () => schemaSince,
      setMaintenance: (on) =>
        Effect.sync(() => {
          maintaining = on
          main?.table.setMaintenance(on)
          history?.table.setMaintenance(on)
        }),
      positions: (topic) =>
        Effect.gen(function*() {
          if (main === undefined) return new Map()
          const orders = tablePositions(yield* main.table.latest("refresh"), topic)
          const held = tablePositions(yield* history!.table.latest("refresh"), topic)
          // The history is committed first: a crash between the two leaves it ahead.
          const out = new Map<number, PartitionPosition>(orders)
          for (const [partition, h] of held) {
            const o = orders.get(partition)
            if (o !== undefined && h.nextOffset < o.nextOffset) out.set(partition, h)
          }
          return out as ReadonlyMap<number, PartitionPosition>
        }),
      commitBatch: (parts) =>
        Effect.gen(function*() {
          const started = Date.now()
          const newest = parts.filter((part) => part.schema !== null).reduce<RowsBatch | null>(
            (a, b) => (a === null || b.schema!.columns.length > a.schema!.columns.length ? b : a),
            null
          )
          if (newest !== null && (schema === null || newest.schema!.columns.length > schema.columns.length)) {
            schemaSince = newest.schemaSince
            yield* follow(newest.schema!)
          }
          if (main === undefined) {
            // Nothing but messages that are not rows (dead letters, copies) before the table's first schema: no table to hold a position yet.
            return { version: null, files: 0 }
          }
          // Another consumer of the group may have added columns first (its partitions reached the
          // marker before ours): write with the table's columns, ours being the first of them.
          const tableSchema = yield* described(storage.root, yield* main.table.latest("if-stale"))
          if (tableSchema !== undefined && tableSchema.schema.columns.length > schema!.columns.length) yield* follow(tableSchema.schema)
          const { table } = main
          const snapshot = yield* table.latest("if-stale")
          const positions = tablePositions(snapshot, parts[0]!.topic)
          const at = new Map<number, bigint>()
          for (const part of parts) {
            const held = positions.get(part.partition)?.nextOffset ?? 0n
            if (held < part.from || held > part.position.nextOffset) {
              return yield* new CommitConflict({ version: snapshot.version, detail: `partition ${part.partition} is at offset ${held} in the table; this batch read it from ${part.from}` })
            }
            at.set(part.partition, held)
          }
          const unseen = keysDeletedUnseen(parts)
          const before = unseen.size === 0 ? new Map<string, Row>() : yield* findRowsByKey(snapshot, keyed(table.format), unseen).pipe(Effect.provideService(TableStorageTag, storage))
          yield* commitHistory(parts, at, before)

          const width = schema!.columns.length
          const changed = new Set<string>()
          const truncated: Array<{ readonly partition: number; readonly partitions: number }> = []
          const rows: Array<Row> = []
          for (const part of parts) {
            const applied = part.changes.filter((change) => change.offset >= at.get(part.partition)!)
            let cut = applied.length - 1
            while (cut >= 0 && applied[cut]!.op !== "truncate") cut--
            if (cut >= 0) {
              truncated.push({ partition: part.partition, partitions: applied[cut]!.partitions! })
              for (const change of applied.slice(0, cut)) if (change.keyText !== null) changed.add(change.keyText)
            }
            for (const [key, row] of netRows(applied.slice(cut + 1))) {
              changed.add(key)
              if (row !== null) rows.push(pad(row, width))
            }
          }
          const moving = parts.filter((part) => at.get(part.partition)! < part.position.nextOffset)
          const evolve = evolution(snapshot, schema!)
          if (moving.length === 0 && evolve.length === 0) return { version: snapshot.version, files: 0 }
          // A truncate's marker on partition p empties the rows whose messages go to p: by their message key.
          const emptied = truncated.length === 0
            ? undefined
            : (key: string) => {
              const messageKey = keyText(schema!, keyRowOf(schema!, key))
              return truncated.some((t) => partitionOfKey(messageKey, t.partitions) === t.partition)
            }
          const now = Date.now()
          const rewrite = changed.size === 0 && emptied === undefined
            ? undefined
            : yield* rewriteWithoutKeys(snapshot, keyed(table.format), changed, now, emptied).pipe(Effect.provideService(TableStorageTag, storage))
          const files = yield* table.writeFiles(
            (dir) => streamFilePath(dir, parts[0]!.topic, parts[0]!.partition, parts[0]!.firstOffset, parts[parts.length - 1]!.lastOffset),
            partitionRows(rows, schema!)
          ).pipe(Effect.tapError(() => Effect.forEach(rewrite?.written ?? [], (path) => storage.remove(path).pipe(Effect.ignore), { discard: true })))
          const removeWritten = Effect.forEach([...(rewrite?.written ?? []), ...files.map((f) => f.add.add.path)], (path) => storage.remove(path).pipe(Effect.ignore), { discard: true })
          const removed = rewrite?.removed ?? new Set<string>()
          const owners = new Set(moving.map((part) => part.partition))
          const done = yield* commit(snapshot, {
            actions: [...evolve, ...(rewrite?.actions ?? []), ...files.map((f) => f.add), ...moving.flatMap((part) => positionTxns(part.topic, part.partition, part.position, now))],
            operation: changed.size === 0 ? "STREAMING UPDATE" : "MERGE",
            operationParameters: {
              outputMode: changed.size === 0 ? "Append" : "Update",
              epochId: moving.map((part) => `${part.partition}:${part.position.nextOffset}`).join(","),
              ...(changed.size === 0 ? {} : { predicate: JSON.stringify(schema!.key) })
            },
            isBlindAppend: removed.size === 0 && evolve.length === 0,
            format: table.format,
            conflictsWith: (winner) => {
              const reason = txnConflict(parts[0]!.topic, owners)(winner)
              if (reason !== undefined) return reason
              // A file we rewrite that another writer removed first (a compaction): the batch is read again.
              for (const action of winner) if ("remove" in action && removed.has(action.remove.path)) return `another writer removed ${action.remove.path}, which this batch rewrites`
              return undefined
            }
          }).pipe(Effect.provideService(TableStorageTag, storage), Effect.tapError((error) => nothingCommitted(error) ? removeWritten : Effect.void))
          yield* table.committed(done.snapshot, started)
          yield* crashPoint("consumer.after-commit")
          return { version: done.version, files: files.length }
        }).pipe(Effect.withSpan("RowsLake.commitBatch", { attributes: { table: config.display } }))
    }
    return lake
  })

/** A winner that moved one of our partitions' positions invalidates our commit. */
const txnConflict = (topic: string, partitions: ReadonlySet<number>) => (winner: ReadonlyArray<Action>): string | undefined => {
  for (const action of winner) {
    if (!("txn" in action)) continue
    const match = /^(.*)-(\d+)(?:\..*)?$/.exec(action.txn.appId)
    if (match !== null && match[1] === topic && partitions.has(Number(match[2]))) return `another writer committed partition ${match[2]} (${action.txn.appId})`
  }
  return undefined
}
