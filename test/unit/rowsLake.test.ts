import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { capturedTableOf } from "../../src/config/capturedTables.ts"
import type { PipelineConfig } from "../../src/config/PipelineConfig.ts"
import type { Column, Row, TableSchema } from "../../src/domain/columns.ts"
import { partitionOfKey } from "../../src/domain/orderPartition.ts"
import { keyText } from "../../src/domain/rowDecode.ts"
import { makeRowsLake, type RowsBatch } from "../../src/layers/lake/rowsLake.ts"
import { makeMemoryObjects, type MemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import type { RowChangeAt } from "../../src/programs/consumer/tableSplit.ts"
import { matchKeyOf } from "../../src/programs/consumer/tableSplit.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { storagePathOf } from "../../src/table/dataPaths.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import { readRowsFile } from "../../src/table/rowsParquet.ts"
import { memoryTableSettings } from "../support/memoryTable.ts"

const column = (name: string, pgType: string, typeOid: number, type: Column["type"], nullable = true): Column => ({ name, pgType, typeOid, type, nullable })
const v1: TableSchema = { columns: [column("id", "integer", 23, { kind: "integer" }, false), column("name", "text", 25, { kind: "string" })], key: ["id"] }
const v2: TableSchema = { ...v1, columns: [...v1.columns, column("fee", "numeric(6,2)", 1700, { kind: "decimal", precision: 6, scale: 2 })] }

const config = capturedTableOf({
  postgres: { table: "r_orders" },
  kafka: { topic: "r_food_orders_raw" },
  datalake: { path: "/lake/output/orders" }
} as unknown as PipelineConfig, { name: "r_shops" })

const topic = config.topic
let seq = 0
const change = (schema: TableSchema, offset: bigint, op: RowChangeAt["op"], row: Row | null, keyRow?: Row, partitions?: number): RowChangeAt => ({
  op,
  keyText: op === "truncate" ? null : matchKeyOf(schema, row ?? keyRow!),
  row,
  key: { epoch: 1, lsn: 100n, phase: 1, seq: seq++ },
  commitTime: null,
  xid: 7,
  offset,
  ...(partitions === undefined ? {} : { partitions })
})

const part = (partition: number, from: bigint, changes: ReadonlyArray<RowChangeAt>, schema: TableSchema | null): RowsBatch => ({
  topic,
  partition,
  from,
  firstOffset: changes[0]?.offset ?? from,
  lastOffset: changes.at(-1)?.offset ?? from,
  position: { nextOffset: (changes.at(-1)?.offset ?? from - 1n) + 1n, lastCaptureKey: null, lastChangeKey: changes.at(-1)?.key ?? null },
  changes,
  schema,
  schemaSince: null
})

const lakeOn = (main: MemoryObjects, history: MemoryObjects) =>
  Effect.gen(function*() {
    const storage = Context.get(yield* Layer.build(memoryTableStorage(main)), TableStorage)
    const historyStorage = Context.get(yield* Layer.build(memoryTableStorage(history)), TableStorage)
    return yield* makeRowsLake(config, memoryTableSettings, storage, historyStorage, yield* Effect.makeSemaphore(1))
  })

/** The table's rows (columns of the newest schema), sorted by id. */
const rowsOf = (objects: MemoryObjects, schema: TableSchema) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const snapshot = yield* loadSnapshot()
    const rows: Array<Row> = []
    for (const add of snapshot.files.values()) {
      const found = yield* storage.read(storagePathOf(add.path, storage.root))
      rows.push(...(yield* Effect.promise(() => readRowsFile(schema)(found!.bytes))))
    }
    return rows.sort((a, b) => String(a[0]).localeCompare(String(b[0]), "en", { numeric: true }))
  }).pipe(Effect.provide(memoryTableStorage(objects)), Effect.orDie)

describe("the rows lake", () => {
  it.scoped("two consumers of a group: the one behind an ADD COLUMN writes with the columns the other added", () =>
    Effect.gen(function*() {
      const main = yield* makeMemoryObjects
      const history = yield* makeMemoryObjects
      const a = yield* lakeOn(main, history)
      yield* a.commitBatch([part(0, 0n, [change(v1, 0n, "snapshot", [1, "a"]), change(v1, 1n, "snapshot", [2, "b"])], v1)])
      const b = yield* lakeOn(main, history)
      expect(b.schema()?.columns.map((c) => c.name)).toEqual(["id", "name"])
      // Consumer a reaches the marker on partition 0 and writes a row with the new column.
      yield* a.commitBatch([part(0, 2n, [change(v2, 2n, "insert", [3, "c", 250n])], v2)])
      // Consumer b, still before the marker on partition 1, writes a row without it. Its first try
      // meets a's new metaData (a conflict: the loop re-reads the positions and the batch); the
      // retry writes with the table's columns, no schema error.
      const first = yield* Effect.flip(b.commitBatch([part(1, 0n, [change(v1, 0n, "insert", [4, "d"])], null)]))
      expect(first._tag).toBe("CommitConflict")
      expect((yield* b.positions(topic)).get(1)).toBeUndefined()
      yield* b.commitBatch([part(1, 0n, [change(v1, 0n, "insert", [4, "d"])], null)])
      expect(b.schema()?.columns.map((c) => c.name)).toEqual(["id", "name", "fee"])
      expect(yield* rowsOf(main, v2)).toEqual([[1, "a", null], [2, "b", null], [3, "c", 250n], [4, "d", null]])
    }))

  it.scoped("a truncate's marker empties the rows of its partition's keys, the history keeps what a delete removed", () =>
    Effect.gen(function*() {
      const main = yield* makeMemoryObjects
      const history = yield* makeMemoryObjects
      const lake = yield* lakeOn(main, history)
      const ids = Array.from({ length: 12 }, (_, i) => i + 1)
      const onPartition = (p: number) => ids.filter((id) => partitionOfKey(keyText(v1, [id, null]), 2) === p)
      const p0 = onPartition(0)
      const p1 = onPartition(1)
      expect(p0.length).toBeGreaterThan(0)
      expect(p1.length).toBeGreaterThan(0)
      yield* lake.commitBatch([
        part(0, 0n, p0.map((id, i) => change(v1, BigInt(i), "snapshot", [id, `n${id}`])), v1),
        part(1, 0n, p1.map((id, i) => change(v1, BigInt(i), "snapshot", [id, `n${id}`])), null)
      ])
      // Partition 0: its marker, then one new row; partition 1: a delete of one of its rows.
      const removed = p1[0]!
      yield* lake.commitBatch([
        part(0, BigInt(p0.length), [change(v1, BigInt(p0.length), "truncate", null, undefined, 2), change(v1, BigInt(p0.length + 1), "insert", [100, "after"])], null),
        part(1, BigInt(p1.length), [change(v1, BigInt(p1.length), "delete", null, [removed, null])], null)
      ])
      expect((yield* rowsOf(main, v1)).map((r) => r[0])).toEqual([...p1.slice(1), 100].sort((x, y) => x - y))
      const historySchema = { columns: [
        column("_change_op", "text", 25, { kind: "string" }), column("_commit_lsn", "bigint", 20, { kind: "long" }), column("_change_seq", "bigint", 20, { kind: "long" }),
        column("_commit_ts", "timestamptz", 1184, { kind: "timestamp" }), column("_xid", "bigint", 20, { kind: "long" }), ...v1.columns
      ], key: [] }
      const changes = yield* rowsOf(history, historySchema)
      const deleted = changes.find((r) => r[0] === "delete")!
      expect([deleted[5], deleted[6]]).toEqual([removed, `n${removed}`])
      expect(changes.filter((r) => r[0] === "truncate")).toHaveLength(1)
      expect(changes).toHaveLength(ids.length + 3)
    }))
})
