import { describe, expect, it } from "vitest"
import type { Column, TableSchema } from "../../src/domain/columns.ts"
import { typeName } from "../../src/domain/columns.ts"
import { schemaStep } from "../../src/domain/schemaEvolution.ts"
import { parseSchemaMessage, parseTypeName } from "../../src/domain/schemaMessage.ts"
import { schemaJson, schemaJsonOf, type TableChange, tableChangeRecords } from "../../src/domain/TableChange.ts"
import { PendingChanges } from "../../src/programs/capture/pendingChanges.ts"
import type { Micros } from "../../src/domain/Timestamp.ts"

const column = (name: string, pgType: string, type: Column["type"], nullable = true): Column => ({ name, pgType, typeOid: 0, type, nullable })

const restaurants: TableSchema = {
  columns: [
    column("id", "bigint", { kind: "long" }, false),
    column("name", "text", { kind: "string" }),
    column("rating", "numeric(3,1)", { kind: "decimal", precision: 3, scale: 1 }),
    column("tags", "text[]", { kind: "array", element: { kind: "string" } })
  ],
  key: ["id"]
}

const announced = (schema: TableSchema) => {
  const parsed = parseSchemaMessage(schemaJsonOf("public.restaurants", schema))
  if (parsed._tag === "Left") throw new Error(parsed.left)
  return parsed.right
}

describe("schema markers", () => {
  it("spell every type so that it reads back as itself", () => {
    const types: Array<Column["type"]> = [
      { kind: "short" }, { kind: "integer" }, { kind: "long" }, { kind: "decimal", precision: 38, scale: 0 }, { kind: "decimal", precision: 1, scale: 1 },
      { kind: "float" }, { kind: "double" }, { kind: "boolean" }, { kind: "string" }, { kind: "date" }, { kind: "timestamp" }, { kind: "binary" },
      { kind: "array", element: { kind: "decimal", precision: 10, scale: 2 } }, { kind: "array", element: { kind: "timestamp" } }
    ]
    for (const type of types) expect(parseTypeName(typeName(type))).toEqual(type)
    for (const bad of ["decimal(39,0)", "decimal(2,3)", "array<array<long>>", "interval", "Long"]) expect(parseTypeName(bad)).toBeUndefined()
  })

  it("carry the columns, the key and the columns the lake cannot hold", () => {
    const json = schemaJson("public.r", ["id"], [...restaurants.columns, { name: "area", pgType: "polygon", typeOid: 604, type: undefined, nullable: true }])
    expect(JSON.parse(json)).toEqual({
      table: "public.r",
      key: ["id"],
      columns: [
        { name: "id", pg_type: "bigint", type_oid: 0, type: "long", nullable: false },
        { name: "name", pg_type: "text", type_oid: 0, type: "string", nullable: true },
        { name: "rating", pg_type: "numeric(3,1)", type_oid: 0, type: "decimal(3,1)", nullable: true },
        { name: "tags", pg_type: "text[]", type_oid: 0, type: "array<string>", nullable: true },
        { name: "area", pg_type: "polygon", type_oid: 604, type: null, nullable: true }
      ]
    })
    const parsed = parseSchemaMessage(json)
    expect(parsed._tag === "Right" && parsed.right.unsupported).toEqual(["area (polygon)"])
    expect(parseSchemaMessage(`{"table":"t","key":["x"],"columns":[]}`)).toMatchObject({ _tag: "Left", left: `a schema marker's key column "x" is not one of its columns` })
    expect(parseSchemaMessage("not json")._tag).toBe("Left")
  })

  it("say which changes a Delta table can follow: only added columns", () => {
    expect(schemaStep(restaurants, announced(restaurants))).toEqual({ _tag: "same" })
    const fee = column("fee", "numeric(6,2)", { kind: "decimal", precision: 6, scale: 2 })
    const added = schemaStep(restaurants, announced({ ...restaurants, columns: [...restaurants.columns, fee] }))
    expect(added).toMatchObject({ _tag: "added", added: [{ name: "fee" }] })
    expect(added._tag === "added" && added.schema.columns.map((c) => c.name)).toEqual(["id", "name", "rating", "tags", "fee"])
    expect(schemaStep(restaurants, announced({ ...restaurants, columns: restaurants.columns.filter((c) => c.name !== "name") }))).toEqual({
      _tag: "incompatible",
      problem: "column name was dropped (or renamed)"
    })
    const retyped = restaurants.columns.map((c) => (c.name === "rating" ? column("rating", "numeric(4,1)", { kind: "decimal", precision: 4, scale: 1 }) : c))
    expect(schemaStep(restaurants, announced({ ...restaurants, columns: retyped }))).toEqual({
      _tag: "incompatible",
      problem: "column rating changed type from numeric(3,1) (decimal(3,1)) to numeric(4,1) (decimal(4,1))"
    })
    expect(schemaStep(restaurants, announced({ ...restaurants, key: ["id", "name"] }))).toMatchObject({ _tag: "incompatible" })
    // From no table yet, every column is added.
    expect(schemaStep({ columns: [], key: [] }, announced(restaurants))).toEqual({ _tag: "added", schema: restaurants, added: restaurants.columns })
  })
})

describe("table change messages", () => {
  const change = (op: TableChange["op"], keyJson: string | null, value: string | null): TableChange => ({
    table: "public.r",
    topic: "r_raw",
    op,
    keyJson,
    value,
    key: { epoch: 5, lsn: 0x16B3748n, phase: 1, seq: 2 },
    commitTime: 1_736_944_200_000_001n as Micros,
    xid: 77
  })

  it("key a row by its key columns, a delete as a tombstone", () => {
    const [insert] = tableChangeRecords(change("insert", `{"id":7}`, `{"id":7,"name":"x"}`), 3, "2026-12-05T00:00:00.000Z")
    expect(insert).toEqual({
      key: `{"id":7}`,
      value: `{"id":7,"name":"x"}`,
      headers: {
        op: "insert",
        lsn: "0/16B3748",
        change_key: "5:00000000016B3748:1:2",
        source: "public.r",
        captured_at: "2026-12-05T00:00:00.000Z",
        commit_ts: "2025-01-15T12:30:00.000001Z",
        xid: "77"
      }
    })
    expect(tableChangeRecords(change("delete", `{"id":7}`, null), 3, "t")[0]).toMatchObject({ key: `{"id":7}`, value: null })
  })

  it("send a marker to every partition, saying how many", () => {
    const markers = tableChangeRecords(change("schema", null, `{"columns":[]}`), 3, "t")
    expect(markers.map((m) => [m.partition, m.key, m.value, m.headers["partitions"], m.headers["op"]])).toEqual(
      [0, 1, 2].map((p) => [p, null, `{"columns":[]}`, "3", "schema"])
    )
  })
})

describe("a schema marker's key", () => {
  it("is the next change's key, and taking it does not move the sequence", () => {
    const pending = new PendingChanges(0n, 9)
    pending.begin(100n, 1, 0n as Micros)
    const first = pending.nextKey()
    expect(pending.peekKey()).toEqual({ epoch: 9, lsn: 100n, phase: 1, seq: 1 })
    expect(pending.nextKey()).toEqual({ epoch: 9, lsn: 100n, phase: 1, seq: 1 })
    expect(first.seq).toBe(0)
  })
})
