import { Data } from "effect"

/** PostgreSQL could not be reached or the query failed. */
export class SourceError extends Data.TaggedError("SourceError")<{
  readonly reason: "unavailable" | "query" | "decode"
  readonly cause: unknown
}> {
  override get message() {
    return `order source ${this.reason}: ${describe(this.cause)}`
  }
}

/** The broker did not acknowledge, or could not be reached. */
export class BrokerError extends Data.TaggedError("BrokerError")<{
  readonly operation: "connect" | "publish" | "fetch" | "commit" | "admin"
  readonly cause: unknown
}> {
  override get message() {
    return `kafka ${this.operation} failed: ${describe(this.cause)}`
  }
}

/**
 * Why storage failed, when we could tell (object stores). Permanent reasons do not fix themselves:
 * a program should stop with the hint rather than retry.
 */
export type StorageFailure =
  | "unreachable" // wrong endpoint, DNS, refused, timed out: may come back
  | "throttled" // 503 SlowDown, 5xx: may come back
  | "conflict" // 409 ConditionalRequestConflict after our retries: may come back
  | "no-bucket"
  | "access-denied"
  | "bad-credentials"
  | "clock-skew"
  | "wrong-region"
  | "misconfigured" // a malformed datalake.path or AWS_* variable
  | "other"

const permanentFailures: ReadonlySet<StorageFailure> = new Set([
  "no-bucket",
  "access-denied",
  "bad-credentials",
  "clock-skew",
  "wrong-region",
  "misconfigured"
])

/** A state or lake file could not be read or written. */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly path: string
  readonly operation: "open" | "read" | "write" | "list" | "remove"
  readonly cause: unknown
  readonly reason?: StorageFailure
  /** What to do about it, for a person: `aws s3 mb s3://lake`, which credential source was used, ... */
  readonly hint?: string
}> {
  override get message() {
    // The hint says what happened and what to do; the cause (an SDK error can be just "UnknownError") follows.
    return this.hint === undefined
      ? `cannot ${this.operation} ${this.path}: ${describe(this.cause)}`
      : `cannot ${this.operation} ${this.path}: ${this.hint} [${describe(this.cause)}]`
  }
}

/** A storage failure that waiting will not fix (missing bucket, refused credentials, clock skew). */
export const isPermanentStorageError = (error: unknown): boolean =>
  error instanceof StorageError && error.reason !== undefined && permanentFailures.has(error.reason)

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : JSON.stringify(cause)
