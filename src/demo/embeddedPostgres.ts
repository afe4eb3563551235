import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { PgClient } from "@effect/sql-pg"
import { Data, Effect } from "effect"
import pg from "pg"
import { ordersTableDdl } from "../layers/postgres/ordersTableDdl.ts"
import { restaurantsDdl } from "./restaurants.ts"

export class EmbeddedPostgresError extends Data.TaggedError("EmbeddedPostgresError")<{ readonly cause: unknown }> {
  override get message() {
    return `embedded PostgreSQL (PGlite) failed to start: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/** What a client needs to reach the embedded server. */
export interface EmbeddedPostgres {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly username: string
  /** e.g. `18.6`: PGlite is PostgreSQL itself, compiled to WebAssembly. */
  readonly serverVersion: string
}

/**
 * PGlite in this process, served over the PostgreSQL wire protocol on a free 127.0.0.1 port, with
 * the orders table created from the same DDL as the real stack, and the demo's restaurants table. Closed with the scope, after the
 * clients acquired later in it.
 */
export const embeddedPostgres = (table: string) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const db = await PGlite.create()
        try {
          await db.exec(ordersTableDdl(table))
          await db.exec(restaurantsDdl)
          const { rows } = await db.query<{ server_version: string }>("SHOW server_version")
          const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 })
          await server.start()
          // Port 0 asks the OS for a free port; the server reports the one it got as host:port.
          const address = server.getServerConn()
          const port = Number(address.slice(address.lastIndexOf(":") + 1))
          return { db, server, port, serverVersion: rows[0]?.server_version ?? "unknown" }
        } catch (error) {
          await db.close()
          throw error
        }
      },
      catch: (cause) => new EmbeddedPostgresError({ cause })
    }),
    ({ db, server }) =>
      Effect.tryPromise(async () => {
        await server.stop()
        await db.close()
      }).pipe(
        Effect.timeoutOption("5 seconds"),
        Effect.catchAll((error) =>
          Effect.logWarning("embedded PostgreSQL did not stop cleanly").pipe(Effect.annotateLogs({ error: error.message }))
        )
      )
  ).pipe(Effect.withSpan("EmbeddedPostgres.start"), Effect.map(({ port, serverVersion }): EmbeddedPostgres => ({
    host: "127.0.0.1",
    port,
    database: "postgres",
    username: "postgres",
    serverVersion
  })))

/**
 * ONE connection to the embedded server, as a `pg` pool of one, shared by the order generator, the
 * orders' capture query (the live `@effect/sql-pg` client over it, `embeddedPgClient`) and the
 * restaurants' poll capture (which takes a `pg` pool). PGlite is a single backend: pg_stat_activity
 * lists one "standalone backend" (and every connection reports its pid), and pglite-socket feeds all
 * connections' protocol messages into it one message at a time, keeping only explicit BEGIN blocks
 * together. More connections add no parallelism, and could let one connection's simple query or
 * Parse fall between another's Parse and Bind (`pg` writes them separately) on the one shared
 * unnamed statement. The server refuses a second connection (`maxConnections: 1` above), so
 * anything that tries one fails loudly instead; the pool of one queues its users instead.
 *
 * The capture horizons stay sound: no other client backend is ever listed, so the orders' horizon
 * is now(), and no other transaction holds the restaurants' sequence; with every statement run one
 * after another, no transaction is open while capture reads.
 */
export const embeddedPool = (postgres: EmbeddedPostgres) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new pg.Pool({
        host: postgres.host,
        port: postgres.port,
        database: postgres.database,
        user: postgres.username,
        max: 1,
        connectionTimeoutMillis: 5_000,
        application_name: "food-orders-demo"
      })
      pool.on("error", () => undefined)
      return pool
    }),
    (pool) => Effect.promise(() => pool.end().catch(() => undefined))
  )

/** The live `@effect/sql-pg` client over the demo's one connection (`embeddedPool`). */
export const embeddedPgClient = (pool: pg.Pool) => PgClient.layerFromPool({ acquire: Effect.succeed(pool), applicationName: "food-orders-demo" })
