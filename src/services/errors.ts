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

/** A state or lake file could not be read or written. */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly path: string
  readonly operation: "read" | "write" | "list" | "remove"
  readonly cause: unknown
}> {
  override get message() {
    return `cannot ${this.operation} ${this.path}: ${describe(this.cause)}`
  }
}

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : JSON.stringify(cause)
