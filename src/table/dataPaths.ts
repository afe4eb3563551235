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

/**
 * A new data file's path: the reference layout `date=YYYY-MM-DD/part-*.parquet`, named for what it
 * holds (topic, Kafka partition, offsets) and unique, so that two writers, or a retry after a crash,
 * never replace a file a version may already name.
 */
export const streamFilePath = (date: string, topic: string, partition: number, first: bigint, last: bigint) =>
  `date=${date}/part-${topic}-${partition}-${pad(first)}-${pad(last)}-${randomUUID().slice(0, 8)}.parquet`

export const compactedFilePath = (date: string) => `date=${date}/part-compacted-${randomUUID()}.parquet`

/** A file rewritten without rows that changes replaced or deleted (copy-on-write). */
export const rewrittenFilePath = (date: string) => `date=${date}/part-rewritten-${randomUUID()}.parquet`

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

/** The file's partition date, from the log (directory names are not part of the protocol). */
export const dateOf = (add: AddFile): string => add.partitionValues["date"] ?? "__HIVE_DEFAULT_PARTITION__"
