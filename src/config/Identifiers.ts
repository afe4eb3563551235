import { Schema } from "effect"

/**
 * A plain SQL identifier: letters, digits and underscores, at most 63 bytes (PostgreSQL's limit).
 * It is still double-quoted in SQL, because reference table names start with a digit.
 */
export const SqlIdentifier = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_]{1,63}$/, {
    message: (issue) => `Expected a plain identifier (letters, digits, _; at most 63), got ${JSON.stringify(issue.actual)}`
  }),
  Schema.brand("SqlIdentifier")
)
export type SqlIdentifier = typeof SqlIdentifier.Type

/** A Kafka topic name as the broker accepts it. */
export const TopicName = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9._-]{1,249}$/, {
    message: (issue) => `Expected a topic name (letters, digits, . _ -; at most 249), got ${JSON.stringify(issue.actual)}`
  }),
  Schema.brand("TopicName")
)
export type TopicName = typeof TopicName.Type

export const quoteIdentifier = (name: SqlIdentifier): string => `"${name}"`
