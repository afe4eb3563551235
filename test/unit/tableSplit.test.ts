import { describe, expect, it } from "vitest"
import type { Column, TableSchema } from "../../src/domain/columns.ts"
import { formatChangeKey } from "../../src/domain/Change.ts"
import { schemaJsonOf } from "../../src/domain/TableChange.ts"
import { addToTableSplit, openTableSplit } from "../../src/programs/consumer/tableSplit.ts"
import type { MessageBatch, RawMessage } from "../../src/services/OrderStream.ts"

const column = (name: string, pgType: string, typeOid: number, type: Column["type"], nullable = true): Column => ({ name, pgType, typeOid, type, nullable })

const v1: TableSchema = {
  columns: [column("id", "bigint", 20, { kind: "long" }, false), column("name", "text", 25, { kind: "string" })],
  key: ["id"]
}
const v2: TableSchema = { ...v1, columns: [...v1.columns, column("fee", "numeric(6,2)", 1700, { kind: "decimal", precision: 6, scale: 2 })] }

const encoder = new TextEncoder()
let offset = 0n
const message = (op: string, seq: number, key: string | null, value: string | null, extra: Record<string, string> = {}): RawMessage => ({
  offset: offset++,
  key: key === null ? null : encoder.encode(key),
  value: value === null ? null : encoder.encode(value),
  headers: { op, change_key: formatChangeKey({ epoch: 1, lsn: 100n, phase: 1, seq }), ...extra }
})
const batch = (messages: ReadonlyArray<RawMessage>): MessageBatch => ({
  topic: "t_raw",
  partition: 0,
  messages,
  nextOffset: messages[messages.length - 1]!.offset + 1n,
  backlog: false
})

describe("a table's split", () => {
  it("reads rows with the columns its schema markers announce, the added column null before them", () => {
    offset = 0n
    const split = openTableSplit("t_raw", 0, { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: null }, { columns: [], key: [] })
    addToTableSplit(split, batch([
      message("schema", 0, null, schemaJsonOf("public.t", v1), { partitions: "1" }),
      message("insert", 0, `{"id":1}`, `{"id":1,"name":"a"}`),
      message("schema", 1, null, schemaJsonOf("public.t", v2), { partitions: "1" }),
      message("update", 1, `{"id":1}`, `{"id":1,"name":"a","fee":2.50}`),
      message("delete", 2, `{"id":1}`, null)
    ]))
    expect(split.dead.map((d) => d.rejection.detail)).toEqual([])
    expect(split.changes.map((c) => [c.op, c.row])).toEqual([["insert", [1n, "a"]], ["update", [1n, "a", 250n]], ["delete", null]])
    expect(split.changes[0]!.keyText).toBe(split.changes[2]!.keyText)
    expect(split.evolved?.columns.map((c) => c.name)).toEqual(["id", "name", "fee"])
    expect([split.messages, split.nextOffset, split.lastChangeKey?.seq]).toEqual([5, 5n, 2])
  })

  it("stops before a marker its table cannot follow, and takes nothing after it", () => {
    offset = 0n
    const split = openTableSplit("t_raw", 0, { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: null }, v2)
    const dropped: TableSchema = { ...v2, columns: v2.columns.filter((c) => c.name !== "name") }
    addToTableSplit(split, batch([
      message("insert", 0, `{"id":2}`, `{"id":2,"name":"b","fee":1}`),
      message("schema", 1, null, schemaJsonOf("public.t", dropped), { partitions: "1" }),
      message("insert", 1, `{"id":3}`, `{"id":3,"fee":1}`)
    ]))
    expect(split.changes.map((c) => c.row)).toEqual([[2n, "b", 100n]])
    expect(split.stopped).toEqual({ offset: 1n, problem: "column name was dropped (or renamed)" })
    expect(split.nextOffset).toBe(1n)
  })

  it("takes an older marker than the table's columns (re-sent after a producer restart, or read late on another partition) for what it is, not a drop", () => {
    // Found by the chaos run: the producer, crashed between publishing and confirming the slot,
    // publishes again from the slot's position, below an ADD COLUMN the consumer has committed;
    // pgoutput's Relation there describes the table without the column. Partition 0's mark (its
    // last row) is below that marker, which then read as "column fee was dropped".
    offset = 0n
    const since = { epoch: 1, lsn: 100n, phase: 1 as const, seq: 5 }
    const split = openTableSplit("t_raw", 0, { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: { epoch: 1, lsn: 100n, phase: 1, seq: 0 } }, v2, since)
    addToTableSplit(split, batch([
      message("schema", 2, null, schemaJsonOf("public.t", v1), { partitions: "1" }),
      message("insert", 2, `{"id":4}`, `{"id":4,"name":"d"}`),
      message("schema", 5, null, schemaJsonOf("public.t", v2), { partitions: "1" }),
      message("update", 5, `{"id":4}`, `{"id":4,"name":"d","fee":1.50}`)
    ]))
    expect(split.stopped).toBeNull()
    expect(split.dead).toEqual([])
    expect(split.changes.map((c) => c.row)).toEqual([[4n, "d", null], [4n, "d", 150n]])
    expect(split.evolved).toBeNull()
    // The same marker after the columns' marker is a drop.
    addToTableSplit(split, batch([message("schema", 6, null, schemaJsonOf("public.t", v1), { partitions: "1" })]))
    expect(split.stopped).toEqual({ offset: 4n, problem: "column fee was dropped (or renamed)" })
  })

  it("remembers which marker gave it its columns, so an older one read after it in the same batch is no drop", () => {
    offset = 0n
    const split = openTableSplit("t_raw", 0, { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: null }, v1)
    addToTableSplit(split, batch([
      message("schema", 3, null, schemaJsonOf("public.t", v2), { partitions: "1" }),
      message("insert", 3, `{"id":5}`, `{"id":5,"name":"e","fee":1}`),
      message("schema", 1, null, schemaJsonOf("public.t", v1), { partitions: "1" })
    ]))
    expect(split.stopped).toBeNull()
    expect(split.schemaSince).toEqual({ epoch: 1, lsn: 100n, phase: 1, seq: 3 })
    expect(split.evolved?.columns.map((c) => c.name)).toEqual(["id", "name", "fee"])
  })

  it("skips copies at or below its mark, markers included, and dead-letters rows that do not fit", () => {
    offset = 0n
    const split = openTableSplit("t_raw", 0, { nextOffset: 0n, lastCaptureKey: null, lastChangeKey: { epoch: 1, lsn: 100n, phase: 1, seq: 1 } }, v1)
    addToTableSplit(split, batch([
      message("schema", 1, null, schemaJsonOf("public.t", v2), { partitions: "1" }),
      message("update", 1, `{"id":1}`, `{"id":1,"name":"a"}`),
      message("insert", 2, `{"id":9}`, `{"id":9,"name":"x","fee":1}`),
      message("insert", 3, `{"id":8}`, `{"id":7,"name":"x"}`),
      message("insert", 4, `{"id":6}`, `{"id":6,"name":true}`)
    ]))
    expect(split.duplicates).toBe(1)
    // The marker was a copy: its column is still unknown.
    expect(split.dead.map((d) => d.rejection.reason)).toEqual(["invalid_row", "invalid_change", "invalid_row"])
    expect(split.changes).toEqual([])
  })
})
