/**
 * A small table format of our own, for the table code's tests of tables that are not the orders':
 * rows keyed by (id, n), partitioned by `region` (which may be null), or not partitioned at all.
 */
import { parquetReadObjects } from "hyparquet"
import type { ColumnSource } from "hyparquet-writer"
import type { AddFile, Metadata } from "../../src/table/actions.ts"
import { asyncBuffer, ParquetRowsWriter, toInt, toText } from "../../src/table/ordersFile.ts"
import { field, ordersProtocol } from "../../src/table/ordersTable.ts"
import { statsOf } from "../../src/table/snapshot.ts"
import type { RowStats, TableFormat } from "../../src/table/tableFormat.ts"

export interface SampleRow {
  readonly id: string
  readonly n: number
  readonly v: number | null
  /** The partition column of the partitioned table (in the log, not in the files); null there too when unpartitioned. */
  readonly region: string | null
}

const parquetSchema = [
  { name: "root", num_children: 3 },
  { name: "id", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "REQUIRED" },
  { name: "n", type: "INT64", repetition_type: "REQUIRED" },
  { name: "v", type: "INT64", repetition_type: "OPTIONAL" }
]

const columnsOf = (rows: ReadonlyArray<SampleRow>): Array<ColumnSource> => [
  { name: "id", data: rows.map((r) => r.id), nullable: false },
  { name: "n", data: BigInt64Array.from(rows, (r) => BigInt(r.n)), nullable: false },
  { name: "v", data: rows.map((r) => (r.v === null ? null : BigInt(r.v))) }
]

/** (id, n) as one text: equal keys, equal texts. */
export const sampleKey = (id: string, n: number) => JSON.stringify([id, n])

class SampleStats implements RowStats<SampleRow> {
  rows = 0
  #id: [string, string] | null = null
  #n: [number, number] = [Infinity, -Infinity]
  #vNulls = 0

  add(rows: ReadonlyArray<SampleRow>): this {
    for (const r of rows) {
      this.#id = this.#id === null ? [r.id, r.id] : [r.id < this.#id[0] ? r.id : this.#id[0], r.id > this.#id[1] ? r.id : this.#id[1]]
      this.#n = [Math.min(this.#n[0], r.n), Math.max(this.#n[1], r.n)]
      if (r.v === null) this.#vNulls++
    }
    this.rows += rows.length
    return this
  }

  json(): string {
    if (this.rows === 0) return JSON.stringify({ numRecords: 0 })
    return JSON.stringify({
      numRecords: this.rows,
      minValues: { id: this.#id![0], n: this.#n[0] },
      maxValues: { id: this.#id![1], n: this.#n[1] },
      nullCount: { id: 0, n: 0, v: this.#vNulls }
    })
  }
}

const schemaOf = (partitioned: boolean) => ({
  type: "struct",
  fields: [field("id", "string"), field("n", "long"), field("v", "long"), ...(partitioned ? [field("region", "string")] : [])]
})

/** The sample table partitioned by `region`, or (`partitioned` false) unpartitioned, with rows keyed by (id, n). */
export const sampleFormat = (partitioned: boolean): TableFormat<SampleRow> & { keys: NonNullable<TableFormat<SampleRow>["keys"]> } => {
  const schemaString = JSON.stringify(schemaOf(partitioned))
  const partitionColumns = partitioned ? ["region"] : []
  return {
    name: partitioned ? "sample_by_region" : "sample",
    protocol: ordersProtocol,
    metadata: (id, configuration, createdTime): Metadata => ({
      id,
      name: null,
      description: null,
      format: { provider: "parquet", options: {} },
      schemaString,
      partitionColumns,
      configuration,
      createdTime
    }),
    schemaDifference: (have, columns) =>
      have !== schemaString || columns.join(",") !== partitionColumns.join(",") ? `not the sample schema: ${have} [${columns.join(",")}]` : undefined,
    writer: (kvMetadata) => new ParquetRowsWriter(parquetSchema, columnsOf, kvMetadata),
    read: async (bytes, rowStart, rowEnd, partitionValues) => {
      const rows = await parquetReadObjects({
        file: asyncBuffer(bytes),
        columns: ["id", "n", "v"],
        ...(rowStart === undefined ? {} : { rowStart }),
        ...(rowEnd === undefined ? {} : { rowEnd })
      })
      return rows.map((row) => ({
        id: toText(row["id"], "id")!,
        n: toInt(row["n"], "n"),
        v: row["v"] === null || row["v"] === undefined ? null : toInt(row["v"], "v"),
        region: partitionValues?.["region"] ?? null
      }))
    },
    stats: () => new SampleStats(),
    partitionColumn: partitioned ? "region" : null,
    keys: {
      keyOf: (row) => sampleKey(row.id, row.n),
      readKeys: async (bytes) => {
        const rows = await parquetReadObjects({ file: asyncBuffer(bytes), columns: ["id", "n"] })
        return rows.map((row) => sampleKey(toText(row["id"], "id")!, toInt(row["n"], "n")))
      },
      mayHold: (add: AddFile, keys: ReadonlySet<string>) => {
        const stats = statsOf(add)
        const low = stats?.minValues?.["id"]
        const high = stats?.maxValues?.["id"]
        if (typeof low !== "string" || typeof high !== "string") return true
        for (const key of keys) {
          const id = (JSON.parse(key) as [string, number])[0]
          if (id >= low && id <= high) return true
        }
        return false
      }
    }
  }
}
