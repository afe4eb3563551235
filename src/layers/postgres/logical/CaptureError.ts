import { Data } from "effect"
import { isBrokerRefusal } from "../../../services/errors.ts"

/**
 * Why logical capture cannot go on. `transient` reasons are retried with backoff from the slot
 * (a dropped connection, a slot briefly held by our own previous connection); the others stop the
 * program with a message that says what to run.
 */
export type CaptureFailure =
  | "connection" // PostgreSQL unreachable, restarted, or the replication connection dropped
  | "slot-busy" // the slot is streamed by another process
  | "misconfigured" // wal_level, max_replication_slots, REPLICATION, table ownership, publication
  | "slot-lost" // the slot vanished or was invalidated after the snapshot: changes may be missing
  | "relation-changed" // a contract column was dropped or retyped
  | "table-replaced" // the captured table was dropped, recreated, renamed or left the publication while streaming
  | "incomplete-row" // an update arrived without a column (REPLICA IDENTITY no longer FULL)
  | "state" // the state file and the database disagree

/** The way out whenever changes may be missing from the topic: publish the table again from a new snapshot. */
export const resnapshotHint = "npm run producer -- --resnapshot"

// A slot still busy after awaitSlotFree's wait belongs to someone else: waiting longer would hide it.
const transientFailures: ReadonlySet<CaptureFailure> = new Set(["connection"])

export class CaptureError extends Data.TaggedError("CaptureError")<{
  readonly reason: CaptureFailure
  /** For a person: what happened and the command that fixes it. */
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message() {
    const cause = this.cause === undefined
      ? ""
      : ` [${this.cause instanceof Error ? this.cause.message : typeof this.cause === "string" ? this.cause : JSON.stringify(this.cause)}]`
    return `capture ${this.reason}: ${this.detail}${cause}`
  }
}

/** A broker's refusal (a login, an ACL, a certificate) is not an outage either: it stops capture with its hint. */
export const isTransientCapture = (error: unknown): boolean =>
  error instanceof CaptureError ? transientFailures.has(error.reason) : !isBrokerRefusal(error)
