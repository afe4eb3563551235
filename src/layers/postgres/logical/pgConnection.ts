import { Effect, Redacted } from "effect"
import pg from "pg"
import type { PipelineConfig } from "../../../config/PipelineConfig.ts"
import type { PgSsl } from "../pgTls.ts"
import { CaptureError } from "./CaptureError.ts"

export interface PgSettings {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: Redacted.Redacted<string>
  readonly applicationName: string
  /** TLS as negotiated at start (pgTls.ts: negotiatePgSsl), the same for every connection. */
  readonly ssl: PgSsl
}

export const pgSettingsOf = (config: PipelineConfig, ssl: PgSsl, applicationName = "food-orders-producer"): PgSettings => ({
  host: config.postgres.host,
  port: config.postgres.port,
  database: config.postgres.db,
  user: config.postgres.user,
  password: config.postgres.password,
  applicationName,
  ssl
})

/**
 * `pg` client settings. The walsender prints values with the session's settings, and the topic
 * carries PostgreSQL's text (pgText.ts): DateStyle ISO fixes the text of dates and timestamps,
 * extra_float_digits 1 the shortest exact floats (a server configured with 0 would round them to 15
 * digits), bytea_output hex the bytes.
 */
export const clientConfigOf = (settings: PgSettings): pg.ClientConfig => ({
  host: settings.host,
  port: settings.port,
  database: settings.database,
  user: settings.user,
  password: Redacted.value(settings.password),
  application_name: settings.applicationName,
  // Always given: left undefined, `pg` would read PGSSLMODE on its own, and differently from libpq.
  ssl: settings.ssl,
  connectionTimeoutMillis: 5_000,
  options: "-c DateStyle=ISO,YMD -c extra_float_digits=1 -c bytea_output=hex"
})

/** An error's message, or the thrown value as text. */
export const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/**
 * A pool for ordinary queries (checks, the snapshot, slot monitoring); it reconnects by itself.
 * Closed with the scope.
 */
export const queryPool = (settings: PgSettings) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const pool = new pg.Pool({ ...clientConfigOf(settings), max: 2, idleTimeoutMillis: 30_000 })
      // An idle client's connection dropping (a PostgreSQL restart) must not crash the process.
      pool.on("error", () => undefined)
      // Nor a lent-out one's: the pool stops listening to a client while it is checked out, and a
      // connection the server ends meanwhile (a restart, pg_terminate_backend during the snapshot)
      // was an unhandled 'error' event. The query in flight fails on its own and is retried.
      pool.on("connect", (client) => client.on("error", () => undefined))
      return pool
    }),
    (pool) => Effect.promise(() => pool.end().catch(() => undefined))
  )

export const query = <Row extends object>(pool: pg.Pool | pg.PoolClient | pg.Client, text: string, values?: ReadonlyArray<unknown>) =>
  Effect.tryPromise({
    try: async () => (await pool.query<Row>(text, values === undefined ? undefined : [...values])).rows,
    catch: (cause) => new CaptureError({ reason: "connection", detail: `query failed: ${text.split("\n")[0]!.slice(0, 80)}`, cause: describe(cause) })
  })

/** One connection of the pool for a transaction; returned (or discarded when broken) with the scope. */
export const reservedClient = (pool: pg.Pool) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => pool.connect(),
      catch: (cause) => new CaptureError({ reason: "connection", detail: "cannot connect to PostgreSQL", cause: describe(cause) })
    }),
    (client, exit) => Effect.sync(() => client.release(exit._tag === "Failure" ? true : undefined))
  )
