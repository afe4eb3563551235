import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Redacted } from "effect"
import { assertTableName, ordersTableDdl } from "../../scripts/stack/sql.ts"
import { uniqueName } from "./names.ts"

/** The live client layer against the test database (build it once per file with `layer(...)` from @effect/vitest). */
export const pgTestLayer = (pgUrl: string) => PgClient.layer({ url: Redacted.make(pgUrl), maxConnections: 4 })

/**
 * Creates a fresh orders table (same DDL as db/001_orders.sql, no rows) and returns its name.
 * Inside `Effect.scoped`/`it.scoped` the table is dropped when the scope closes.
 */
export const createOrdersTable = (prefix = "orders") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = uniqueName(prefix)
    // No bind parameters: runs as one simple-protocol query, so the two statements go in one round-trip.
    yield* sql.unsafe(ordersTableDdl(table))
    return table
  })

export const dropTable = (table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`DROP TABLE IF EXISTS "${assertTableName(table)}"`)
  })

/** createOrdersTable whose table is dropped when the enclosing scope closes. */
export const scopedOrdersTable = (prefix = "orders") =>
  Effect.acquireRelease(createOrdersTable(prefix), (table) => Effect.orDie(dropTable(table)))
