/** Names in `_delta_log/` (PROTOCOL.md, "Delta Log Entries" and "Checkpoints"). */

export const logDir = "_delta_log/"
export const lastCheckpointPath = `${logDir}_last_checkpoint`

const pad = (version: number) => String(version).padStart(20, "0")

export const commitPath = (version: number) => `${logDir}${pad(version)}.json`
export const checkpointPath = (version: number) => `${logDir}${pad(version)}.checkpoint.parquet`

export type LogEntry =
  | { readonly kind: "commit"; readonly version: number }
  | { readonly kind: "checkpoint"; readonly version: number; readonly part: number; readonly parts: number }
  | { readonly kind: "other"; readonly version: number | undefined }

const commitName = /^(\d{20})\.json$/
const singleCheckpoint = /^(\d{20})\.checkpoint\.parquet$/
const multiCheckpoint = /^(\d{20})\.checkpoint\.(\d{10})\.(\d{10})\.parquet$/
const versioned = /^\.?(\d{20})\./

/** What a file in `_delta_log/` is, from its name alone (path relative to the table root). */
export const parseLogEntry = (path: string): LogEntry | undefined => {
  if (!path.startsWith(logDir)) return undefined
  const name = path.slice(logDir.length)
  if (name.includes("/")) return undefined
  let m = commitName.exec(name)
  if (m !== null) return { kind: "commit", version: Number(m[1]) }
  m = singleCheckpoint.exec(name)
  if (m !== null) return { kind: "checkpoint", version: Number(m[1]), part: 1, parts: 1 }
  m = multiCheckpoint.exec(name)
  if (m !== null) return { kind: "checkpoint", version: Number(m[1]), part: Number(m[2]), parts: Number(m[3]) }
  m = versioned.exec(name)
  return { kind: "other", version: m === null ? undefined : Number(m[1]) }
}
