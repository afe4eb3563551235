import { parquetReadObjects } from "hyparquet"
import type { ColumnSource } from "hyparquet-writer"
import type { Cents } from "../domain/Amount.ts"
import type { ChangeOp } from "../domain/Change.ts"
import { Micros } from "../domain/Timestamp.ts"
import type { Metadata } from "./actions.ts"
import { orderSchema } from "./orderColumns.ts"
import { asyncBuffer, ParquetRowsWriter, parsers, toCents, toInt, toText } from "./ordersFile.ts"
import { field, ordersProtocol, partitionColumn, schemaDifferenceFor, statsTimestamp } from "./ordersTable.ts"
import type { RowStats, TableFormat } from "./tableFormat.ts"

/**
 * A row of `order_changes`: one committed change of an order (or a row of the initial snapshot), the
 * order's columns as they were after it (a delete: as they were before it, from the table or the
 * batch), and where it stands in PostgreSQL's commit order. `ORDER BY commit_lsn, change_seq` is the
 * order the changes were committed in.
 */
export interface ChangeRow {
  readonly order_id: number
  readonly op: ChangeOp
  /** The commit LSN of the change's transaction, as a number (sortable; `formatLsn` spells it as PostgreSQL does). */
  readonly commit_lsn: bigint
  /** The change's index in its transaction (a snapshot row: its order_id). */
  readonly change_seq: number
  readonly commit_ts: Micros | null
  readonly xid: number | null
  readonly customer_name: string | null
  readonly restaurant_name: string | null
  readonly item: string | null
  readonly amount: Cents | null
  readonly order_status: string | null
  /** Null only for the delete of an order whose row neither the table nor the batch held. */
  readonly created_at: Micros | null
}

export const changesSchema = {
  type: "struct",
  fields: [
    field("order_id", "long"),
    field("op", "string"),
    field("commit_lsn", "long"),
    field("change_seq", "long"),
    field("commit_ts", "timestamp"),
    field("xid", "long"),
    field("customer_name", "string"),
    field("restaurant_name", "string"),
    field("item", "string"),
    field("amount", "decimal(10,2)"),
    field("order_status", "string"),
    field("created_at", "timestamp"),
    field("date", "date")
  ]
} as const

const changesMetadata = (id: string, configuration: Readonly<Record<string, string>>, createdTime: number): Metadata => ({
  id,
  name: null,
  description: "food-orders-pipeline: every change of every order captured by logical replication, partitioned by the UTC date of created_at",
  format: { provider: "parquet", options: {} },
  schemaString: JSON.stringify(changesSchema),
  partitionColumns: [partitionColumn],
  configuration,
  createdTime
})

const changesSchemaDifference = schemaDifferenceFor(changesSchema)

/** The orders table's Parquet element of a column: the history stores the order's columns the same way. */
const orderElement = (name: (typeof orderSchema)[number]["name"]) => orderSchema.find((element) => element.name === name)!
const optionalTimestamp = { ...orderElement("created_at"), repetition_type: "OPTIONAL" } as const

const parquetSchema = [
  { name: "root", num_children: 12 },
  orderElement("order_id"),
  { ...orderElement("customer_name"), name: "op", repetition_type: "REQUIRED" },
  { name: "commit_lsn", type: "INT64", repetition_type: "REQUIRED" },
  { name: "change_seq", type: "INT64", repetition_type: "REQUIRED" },
  { ...optionalTimestamp, name: "commit_ts" },
  { name: "xid", type: "INT64", repetition_type: "OPTIONAL" },
  orderElement("customer_name"),
  orderElement("restaurant_name"),
  orderElement("item"),
  orderElement("amount"),
  orderElement("order_status"),
  optionalTimestamp
]

const columnsOf = (rows: ReadonlyArray<ChangeRow>): Array<ColumnSource> => {
  const n = rows.length
  const orderId = new BigInt64Array(n)
  const lsn = new BigInt64Array(n)
  const seq = new BigInt64Array(n)
  const op = new Array<string>(n)
  const commitTs = new Array<bigint | null>(n)
  const xid = new Array<bigint | null>(n)
  const customer = new Array<string | null>(n)
  const restaurant = new Array<string | null>(n)
  const item = new Array<string | null>(n)
  const amount = new Array<bigint | null>(n)
  const status = new Array<string | null>(n)
  const createdAt = new Array<bigint | null>(n)
  for (let i = 0; i < n; i++) {
    const r = rows[i]!
    orderId[i] = BigInt(r.order_id)
    op[i] = r.op
    lsn[i] = r.commit_lsn
    seq[i] = BigInt(r.change_seq)
    commitTs[i] = r.commit_ts
    xid[i] = r.xid === null ? null : BigInt(r.xid)
    customer[i] = r.customer_name
    restaurant[i] = r.restaurant_name
    item[i] = r.item
    amount[i] = r.amount === null ? null : BigInt(r.amount)
    status[i] = r.order_status
    createdAt[i] = r.created_at
  }
  return [
    { name: "order_id", data: orderId, nullable: false },
    { name: "op", data: op, nullable: false },
    { name: "commit_lsn", data: lsn, nullable: false },
    { name: "change_seq", data: seq, nullable: false },
    { name: "commit_ts", data: commitTs },
    { name: "xid", data: xid },
    { name: "customer_name", data: customer },
    { name: "restaurant_name", data: restaurant },
    { name: "item", data: item },
    { name: "amount", data: amount },
    { name: "order_status", data: status },
    { name: "created_at", data: createdAt }
  ]
}

/** Exact statistics: row count, null counts of every column, bounds of order_id, commit_lsn and the timestamps. */
class ChangesStats implements RowStats<ChangeRow> {
  #rows = 0
  #id: [number, number] = [Infinity, -Infinity]
  #lsn: [bigint, bigint] | null = null
  #commitTs: [bigint, bigint] | null = null
  #created: [bigint, bigint] | null = null
  readonly #nulls = { commit_ts: 0, xid: 0, customer_name: 0, restaurant_name: 0, item: 0, amount: 0, order_status: 0, created_at: 0 }

  add(rows: ReadonlyArray<ChangeRow>): this {
    const widen = (range: [bigint, bigint] | null, v: bigint): [bigint, bigint] =>
      range === null ? [v, v] : [v < range[0] ? v : range[0], v > range[1] ? v : range[1]]
    for (const r of rows) {
      if (r.order_id < this.#id[0]) this.#id[0] = r.order_id
      if (r.order_id > this.#id[1]) this.#id[1] = r.order_id
      this.#lsn = widen(this.#lsn, r.commit_lsn)
      if (r.commit_ts === null) this.#nulls.commit_ts++
      else this.#commitTs = widen(this.#commitTs, r.commit_ts)
      if (r.created_at === null) this.#nulls.created_at++
      else this.#created = widen(this.#created, r.created_at)
      if (r.xid === null) this.#nulls.xid++
      if (r.customer_name === null) this.#nulls.customer_name++
      if (r.restaurant_name === null) this.#nulls.restaurant_name++
      if (r.item === null) this.#nulls.item++
      if (r.amount === null) this.#nulls.amount++
      if (r.order_status === null) this.#nulls.order_status++
    }
    this.#rows += rows.length
    return this
  }

  get rows() {
    return this.#rows
  }

  json(): string {
    if (this.#rows === 0) return `{"numRecords":0}`
    const bound = (i: 0 | 1) =>
      [
        `"order_id":${this.#id[i]}`,
        `"commit_lsn":${this.#lsn![i]}`,
        ...(this.#commitTs === null ? [] : [`"commit_ts":${JSON.stringify(statsTimestamp(this.#commitTs[i]))}`]),
        ...(this.#created === null ? [] : [`"created_at":${JSON.stringify(statsTimestamp(this.#created[i]))}`])
      ].join(",")
    const nulls = Object.entries(this.#nulls).map(([k, v]) => `"${k}":${v}`).join(",")
    return `{"numRecords":${this.#rows},"minValues":{${bound(0)}},"maxValues":{${bound(1)}},"nullCount":{"order_id":0,"op":0,"commit_lsn":0,"change_seq":0,${nulls}}}`
  }
}

const microsOrNull = (value: unknown): Micros | null => (typeof value === "bigint" ? Micros.make(value) : null)

const readChangesFile = async (bytes: Uint8Array, rowStart?: number, rowEnd?: number): Promise<Array<ChangeRow>> => {
  const rows = await parquetReadObjects({
    file: asyncBuffer(bytes),
    columns: parquetSchema.slice(1).map((c) => c.name),
    parsers,
    ...(rowStart === undefined ? {} : { rowStart }),
    ...(rowEnd === undefined ? {} : { rowEnd })
  })
  return rows.map((row) => {
    const lsn = row["commit_lsn"]
    return {
      order_id: toInt(row["order_id"], "order_id"),
      op: String(row["op"]) as ChangeOp,
      commit_lsn: typeof lsn === "bigint" ? lsn : BigInt(toInt(lsn, "commit_lsn")),
      change_seq: toInt(row["change_seq"], "change_seq"),
      commit_ts: microsOrNull(row["commit_ts"]),
      xid: row["xid"] === null || row["xid"] === undefined ? null : toInt(row["xid"], "xid"),
      customer_name: toText(row["customer_name"], "customer_name"),
      restaurant_name: toText(row["restaurant_name"], "restaurant_name"),
      item: toText(row["item"], "item"),
      amount: toCents(row["amount"]),
      order_status: toText(row["order_status"], "order_status"),
      created_at: microsOrNull(row["created_at"])
    }
  })
}

export const changesFormat: TableFormat<ChangeRow> = {
  name: "order_changes",
  protocol: ordersProtocol,
  metadata: changesMetadata,
  schemaDifference: changesSchemaDifference,
  writer: (kvMetadata) => new ParquetRowsWriter(parquetSchema, columnsOf, kvMetadata),
  read: readChangesFile,
  stats: () => new ChangesStats()
}
