import { randomBytes } from "node:crypto"

/**
 * A name unique to this run and call, valid as a PostgreSQL table name (see scripts/stack/sql.ts), a Kafka
 * topic, a consumer group and a directory: lowercase [a-z0-9_], starting with the prefix.
 * Tests never share tables or topics, so they can run against a long-lived stack without cleanup order.
 */
export const uniqueName = (prefix: string): string => {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(prefix)) throw new Error(`invalid prefix ${JSON.stringify(prefix)}: expected [a-z][a-z0-9_]{0,30}`)
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`
}
