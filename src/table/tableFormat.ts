import type { Order } from "../domain/Order.ts"
import type { AddFile, Metadata, Protocol } from "./actions.ts"
import { OrdersFileWriter, readOrdersFile } from "./ordersFile.ts"
import { ordersMetadata, ordersProtocol, OrdersStats, schemaDifference } from "./ordersTable.ts"

/** Statistics of a data file, fed rows in chunks (compaction streams them). */
export interface RowStats<Row> {
  add(rows: ReadonlyArray<Row>): this
  readonly rows: number
  json(): string
}

/** A Parquet file being written, chunk by chunk. */
export interface RowFileWriter<Row> {
  write(rows: ReadonlyArray<Row>): void
  finish(): Uint8Array
}

/**
 * What the table code needs to know of one kind of table: its schema in the log, and how its rows
 * go into and come out of Parquet files. The orders table and the change history (order_changes)
 * share everything else: the log, commits, checkpoints, compaction and vacuum.
 */
export interface TableFormat<Row> {
  /** For messages: "orders", "order_changes". */
  readonly name: string
  readonly protocol: Protocol
  readonly metadata: (id: string, configuration: Readonly<Record<string, string>>, createdTime: number) => Metadata
  /** How the table's schema differs from ours (we write only tables whose columns we know), or undefined. */
  readonly schemaDifference: (schemaString: string, partitionColumns: ReadonlyArray<string>) => string | undefined
  readonly writer: (kvMetadata?: ReadonlyArray<{ key: string; value: string }>) => RowFileWriter<Row>
  /**
   * Rows [rowStart, rowEnd) of a data file. `partitionValues`: the file's `add.partitionValues`, given
   * where the rows leave the table code (copy-on-write's `before`, findRowsByKey), since a partition
   * column's value is in the log, never in the file.
   */
  readonly read: (bytes: Uint8Array, rowStart?: number, rowEnd?: number, partitionValues?: Readonly<Record<string, string | null>>) => Promise<Array<Row>>
  readonly stats: () => RowStats<Row>
  /**
   * The partition column (its values in `add.partitionValues`, never in the files): `date` for the
   * orders tables; null for an unpartitioned table. Absent: `date`.
   */
  readonly partitionColumn?: string | null
  /** How rows are matched to changes by key (copy-on-write); absent for tables only appended to. */
  readonly keys?: RowKeys<Row>
}

/**
 * A table's row key, for the copy-on-write of changes: which rows a batch of changes replaces.
 * Keys are canonical texts (equal texts, equal keys).
 */
export interface RowKeys<Row> {
  readonly keyOf: (row: Row) => string
  /** The keys of a data file's rows, in row order, reading as few columns as it can (the key columns). */
  readonly readKeys: (bytes: Uint8Array) => Promise<ReadonlyArray<string>>
  /**
   * Whether a file may hold one of `keys`, by its statistics (true when it cannot tell): a file ruled
   * out is never read. `keys` come from `keyOf`.
   */
  readonly mayHold: (add: AddFile, keys: ReadonlySet<string>) => boolean
}

export const ordersFormat: TableFormat<Order> = {
  name: "orders",
  protocol: ordersProtocol,
  metadata: ordersMetadata,
  schemaDifference,
  writer: (kvMetadata) => new OrdersFileWriter(kvMetadata),
  read: readOrdersFile,
  stats: () => new OrdersStats()
}

/** One Parquet file holding these rows, in this order. */
export const rowFileBytes = <Row>(format: TableFormat<Row>, rows: ReadonlyArray<Row>): Uint8Array => {
  const writer = format.writer()
  writer.write(rows)
  return writer.finish()
}

/** The table's partition columns as `metaData.partitionColumns` names them: ["date"] unless the format says otherwise, [] unpartitioned. */
export const partitionColumnsOf = (format: Pick<TableFormat<unknown>, "partitionColumn">): ReadonlyArray<string> =>
  format.partitionColumn === undefined ? ["date"] : format.partitionColumn === null ? [] : [format.partitionColumn]
