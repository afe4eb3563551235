import { type AsyncBuffer, parquetMetadata, parquetReadObjects } from "hyparquet"
import { ByteWriter, type ColumnSource, ParquetWriter } from "hyparquet-writer"
import type { Cents } from "../domain/Amount.ts"
import type { Order } from "../domain/Order.ts"
import { Micros } from "../domain/Timestamp.ts"
import { parquetCreatedBy as createdBy } from "./engine.ts"
import { orderColumns, orderSchema } from "./orderColumns.ts"

/** Rows per Parquet row group: large enough for engines to scan well, small enough to stream. */
const rowGroupRows = 100_000

/**
 * A Parquet file of rows being written, row group by row group, so that compaction can merge large
 * files without holding all their rows as objects at once. `schema` and `columnsOf` say the table's
 * columns (the orders table's by default, the change history's in changesTable.ts).
 */
export class ParquetRowsWriter<Row> {
  readonly #bytes = new ByteWriter()
  readonly #writer: ParquetWriter
  readonly #columnsOf: (rows: ReadonlyArray<Row>) => Array<ColumnSource>
  rows = 0

  constructor(
    schema: ReadonlyArray<object>,
    columnsOf: (rows: ReadonlyArray<Row>) => Array<ColumnSource>,
    kvMetadata: ReadonlyArray<{ key: string; value: string }> = []
  ) {
    this.#columnsOf = columnsOf
    this.#writer = new ParquetWriter({
      writer: this.#bytes,
      schema: schema as never,
      codec: "SNAPPY",
      createdBy,
      kvMetadata: [...kvMetadata]
    })
  }

  write(rows: ReadonlyArray<Row>): void {
    if (rows.length === 0) return
    void this.#writer.write({ columnData: this.#columnsOf(rows), rowGroupSize: rowGroupRows })
    this.rows += rows.length
  }

  finish(): Uint8Array {
    this.#writer.finish()
    return new Uint8Array(this.#bytes.getBuffer())
  }
}

/** A Parquet file of orders being written (the orders table's columns). */
export class OrdersFileWriter extends ParquetRowsWriter<Order> {
  constructor(kvMetadata: ReadonlyArray<{ key: string; value: string }> = []) {
    super(orderSchema, orderColumns, kvMetadata)
  }
}

/** One Parquet file holding these orders, in this order. */
export const ordersFileBytes = (orders: ReadonlyArray<Order>, kvMetadata?: ReadonlyArray<{ key: string; value: string }>) => {
  const writer = new OrdersFileWriter(kvMetadata)
  writer.write(orders)
  return writer.finish()
}

export const asyncBuffer = (bytes: Uint8Array): AsyncBuffer => ({
  byteLength: bytes.byteLength,
  slice: (start, end) => bytes.buffer.slice(bytes.byteOffset + start, bytes.byteOffset + (end ?? bytes.byteLength)) as ArrayBuffer
})

const columns = ["order_id", "customer_name", "restaurant_name", "item", "amount", "order_status", "created_at"]

/** Timestamps as exact microseconds, whatever unit the writer used (Spark may write INT96). */
export const parsers = {
  timestampFromMilliseconds: (millis: bigint) => millis * 1000n,
  timestampFromMicroseconds: (micros: bigint) => micros,
  timestampFromNanoseconds: (nanos: bigint) => nanos / 1000n
}

export const toInt = (value: unknown, column: string): number => {
  const n = typeof value === "bigint" ? Number(value) : value
  if (typeof n !== "number" || !Number.isSafeInteger(n)) throw new Error(`${column}: expected an integer, got ${String(value)}`)
  return n
}

export const toText = (value: unknown, column: string): string | null => {
  if (value === null || value === undefined) return null
  if (typeof value !== "string") throw new Error(`${column}: expected text, got ${typeof value}`)
  return value
}

/** DECIMAL(10,2) arrives as a JS number (hyparquet divides by 10^scale); cents are exact below 2^53 / 100. */
export const toCents = (value: unknown): Cents | null => {
  if (value === null || value === undefined) return null
  const n = typeof value === "bigint" ? Number(value) : value
  if (typeof n !== "number" || !Number.isFinite(n)) throw new Error(`amount: expected a decimal, got ${String(value)}`)
  return Math.round(n * 100) as Cents
}

/** The number of rows in a Parquet file, from its footer. */
export const parquetRowCount = (bytes: Uint8Array): number => Number(parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer).num_rows)

/**
 * Reads rows [rowStart, rowEnd) of a data file of the orders table, written by us or by another
 * engine (Spark), as orders. A file whose columns are not the table's fails with what is wrong.
 */
export const readOrdersFile = async (bytes: Uint8Array, rowStart?: number, rowEnd?: number): Promise<Array<Order>> => {
  const rows = await parquetReadObjects({
    file: asyncBuffer(bytes),
    columns,
    parsers,
    ...(rowStart === undefined ? {} : { rowStart }),
    ...(rowEnd === undefined ? {} : { rowEnd })
  })
  const orders: Array<Order> = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!
    const created = row["created_at"]
    if (typeof created !== "bigint") throw new Error(`created_at: expected a timestamp, got ${String(created)}`)
    orders[i] = {
      order_id: toInt(row["order_id"], "order_id"),
      customer_name: toText(row["customer_name"], "customer_name"),
      restaurant_name: toText(row["restaurant_name"], "restaurant_name"),
      item: toText(row["item"], "item"),
      amount: toCents(row["amount"]),
      order_status: toText(row["order_status"], "order_status"),
      created_at: Micros.make(created)
    }
  }
  return orders
}

/** The order_id column of a data file alone: enough to tell whether a file holds one of some orders. */
export const readOrderIds = async (bytes: Uint8Array): Promise<Array<number>> => {
  const rows = await parquetReadObjects({ file: asyncBuffer(bytes), columns: ["order_id"] })
  const ids: Array<number> = new Array(rows.length)
  for (let i = 0; i < rows.length; i++) ids[i] = toInt(rows[i]!["order_id"], "order_id")
  return ids
}
