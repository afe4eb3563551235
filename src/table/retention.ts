import type { Snapshot } from "./snapshot.ts"

/**
 * How long the table keeps history: our configured retention, or longer when the table's own
 * properties say so (Spark's cleanup and VACUUM read `delta.logRetentionDuration` and
 * `delta.deletedFileRetentionDuration`; a user who set them longer expects every writer to keep to
 * them). Never shorter than either: nothing is deleted that one of them still wants kept.
 */
export interface Retention {
  /** Log entries older than this may go (behind a checkpoint). */
  readonly logMs: number
  /** Removed data files, and our own unreferenced ones, older than this may go. */
  readonly deletedFileMs: number
}

const unitMs: Readonly<Record<string, number>> = {
  microsecond: 0.001,
  millisecond: 1,
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000
}

/**
 * Spark's interval text as Delta's properties hold it: `interval 7 days`, `interval 1 week`,
 * `interval 2 hours 30 minutes`. Months and years are refused, as Delta refuses them (not a fixed
 * length). Undefined when it is not that.
 */
export const parseInterval = (text: string): number | undefined => {
  const words = text.trim().toLowerCase().split(/\s+/)
  if (words[0] === "interval") words.shift()
  if (words.length === 0 || words.length % 2 !== 0) return undefined
  let total = 0
  for (let i = 0; i < words.length; i += 2) {
    const amount = Number(words[i])
    const unit = unitMs[words[i + 1]!.replace(/s$/, "")]
    if (!Number.isFinite(amount) || amount < 0 || unit === undefined) return undefined
    total += amount * unit
  }
  return total
}

export class RetentionPropertyError extends Error {}

const fromProperty = (snapshot: Snapshot, key: string): number | undefined => {
  const text = snapshot.metadata?.configuration[key]
  if (text === undefined) return undefined
  const ms = parseInterval(text)
  if (ms === undefined) {
    throw new RetentionPropertyError(`table property ${key} = ${JSON.stringify(text)} is not an interval such as 'interval 7 days'; nothing is cleaned up until it is`)
  }
  return ms
}

/** The retention to clean `snapshot` with; throws RetentionPropertyError on a property we cannot read (clean nothing then). */
export const retentionOf = (snapshot: Snapshot, configuredMs: number): Retention => ({
  logMs: Math.max(configuredMs, fromProperty(snapshot, "delta.logRetentionDuration") ?? 0),
  deletedFileMs: Math.max(configuredMs, fromProperty(snapshot, "delta.deletedFileRetentionDuration") ?? 0)
})

/**
 * The shortest `table.retention_minutes` accepted without `table.allow_short_retention`: our commits
 * are written in seconds, but another consumer of the group may hold files for a commit it is still
 * making, and a reader of an older version (a Spark job, a time-travel query) must finish before its
 * files go. Tests and benchmarks that need the log's steady state within minutes opt out.
 */
export const minimumRetentionMinutes = 10

/**
 * Unreferenced files that are not ours (another engine's: Spark writes its data files before it
 * commits them, for as long as its job runs) are kept this long by default, as Spark's VACUUM keeps
 * every file (delta.deletedFileRetentionDuration's default, 7 days).
 */
export const defaultForeignFileRetentionHours = 168
