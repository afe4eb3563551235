import { randomUUID } from "node:crypto"
import type { AddFile } from "./actions.ts"

/**
 * Paths in `add`/`remove` are URIs relative to the table root (or absolute). Storage paths are
 * plain relative paths. Our own names need no escaping (topic names are [a-zA-Z0-9._-]); other
 * writers' names are decoded (lake-table.md: `%41` reads as `A`).
 */
export const storagePathOf = (logPath: string, root: string): string => {
  let path = logPath
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:/.exec(path)
  if (scheme !== null) {
    const rootUri = root.startsWith("/") ? `file:${root}` : root
    const normalized = path.replace(/^file:\/\/\//, "file:/").replace(/^file:\/\/localhost\//, "file:/")
    const prefix = rootUri.endsWith("/") ? rootUri : `${rootUri}/`
    if (!normalized.startsWith(prefix)) throw new Error(`absolute path outside the table: ${logPath}`)
    path = normalized.slice(prefix.length)
  }
  return path.split("/").map((segment) => decodeURIComponent(segment)).join("/")
}

const pad = (offset: bigint) => offset.toString().padStart(20, "0")

/** The partition value Delta and Hive give the directory of a null value (lake-table.md). */
export const nullPartitionName = "__HIVE_DEFAULT_PARTITION__"

/** Characters Hive and Spark escape in a partition directory name (ExternalCatalogUtils.escapePathName). */
const hiveEscaped = /[\u0000-\u001f"#%'*/:=?\\\u007f{[\]^]/g

const escapePathName = (text: string) =>
  text.replace(hiveEscaped, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`)

/**
 * The storage directory of a partition's files, with its trailing slash: `date=2025-01-15/`,
 * `<column>=__HIVE_DEFAULT_PARTITION__/` for a null value, `a=1/b=2/` for several columns, and ""
 * (the table root) for an unpartitioned table. Names and values are escaped as Spark escapes them, so
 * a value holding `/` or `=` stays one directory.
 */
export const partitionDir = (columns: ReadonlyArray<string>, values: Readonly<Record<string, string | null>>): string =>
  columns.map((column) => {
    const value = values[column]
    return `${escapePathName(column)}=${value === null || value === undefined || value === "" ? nullPartitionName : escapePathName(value)}/`
  }).join("")

/** Checks a directory argument: "" or ending in "/" (a date passed where a directory belongs fails here, not in the layout). */
const dirOf = (dir: string) => {
  if (dir !== "" && !dir.endsWith("/")) throw new Error(`not a partition directory: ${JSON.stringify(dir)}`)
  return dir
}

/**
 * A new data file's storage path in the partition directory `dir` (partitionDir): the reference
 * layout `date=YYYY-MM-DD/part-*.parquet` for the orders tables, named for what it holds (topic,
 * Kafka partition, offsets) and unique, so that two writers, or a retry after a crash, never replace
 * a file a version may already name.
 */
export const streamFilePath = (dir: string, topic: string, partition: number, first: bigint, last: bigint) =>
  `${dirOf(dir)}part-${topic}-${partition}-${pad(first)}-${pad(last)}-${randomUUID().slice(0, 8)}.parquet`

export const compactedFilePath = (dir: string) => `${dirOf(dir)}part-compacted-${randomUUID()}.parquet`

/** A file rewritten without rows that changes replaced or deleted (copy-on-write). */
export const rewrittenFilePath = (dir: string) => `${dirOf(dir)}part-rewritten-${randomUUID()}.parquet`

/**
 * The log's path (a relative URI) of a storage path we wrote: each segment percent-encoded where a
 * URI path needs it, so that storagePathOf gives the storage path back (`%` of an escaped partition
 * value becomes `%25`, as Spark writes it). Our own names need none: the orders paths are unchanged.
 */
export const logPathOf = (storagePath: string): string =>
  storagePath.split("/").map((segment) => segment.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@]/gu, (c) => encodeURIComponent(c))).join("/")

const ownNames = [
  /^part-compacted-[0-9a-f-]{36}\.parquet$/,
  /^part-rewritten-[0-9a-f-]{36}\.parquet$/,
  /^part-[A-Za-z0-9._-]+-\d+-\d{20}-\d{20}-[0-9a-f]{8}\.parquet$/
]

/**
 * Whether this pipeline named the data file (streamFilePath, compactedFilePath, rewrittenFilePath),
 * or it is one of our hidden temporaries: vacuum may take such a file once the retention has passed,
 * while another engine's unreferenced file may be one its running job is about to commit.
 */
export const isOwnFile = (path: string) => {
  const name = path.slice(path.lastIndexOf("/") + 1)
  return (name.startsWith(".") && name.endsWith(".tmp")) || ownNames.some((pattern) => pattern.test(name))
}

export const isDataFile = (path: string) => path.endsWith(".parquet") && !path.startsWith("_delta_log/")

/** A partition's value as the log holds it: null for the null partition (absent or "" read as null, as Spark does). */
export const partitionValueOf = (values: Readonly<Record<string, string | null>> | null | undefined, column: string): string | null => {
  const value = values?.[column]
  return value === undefined || value === "" ? null : value
}

/** Equal texts for files of one partition of a table partitioned by `columns` ("[]" for every file of an unpartitioned table). */
export const partitionKeyOf = (columns: ReadonlyArray<string>, values: Readonly<Record<string, string | null>>): string =>
  JSON.stringify(columns.map((column) => partitionValueOf(values, column)))

/** The file's partition date, from the log (directory names are not part of the protocol). */
export const dateOf = (add: AddFile): string => add.partitionValues["date"] ?? nullPartitionName
