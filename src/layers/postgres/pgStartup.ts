import { Data, Effect, Redacted, Schedule } from "effect"
import pg from "pg"
import type { PipelineConfig } from "../../config/PipelineConfig.ts"
import { onceBackoff, outageBackoff } from "../../runtime/schedules.ts"
import { isCertificateErrorCode } from "../../services/errors.ts"
import { describeSsl, negotiatePgSsl, type PgSsl, PgTlsError } from "./pgTls.ts"

/** PostgreSQL answered and refused: no retry fixes a wrong password or a missing pg_hba line. */
export class PgLoginError extends Data.TaggedError("PgLoginError")<{ readonly detail: string }> {
  override get message() {
    return this.detail
  }
}

class Unreachable extends Data.TaggedError("Unreachable")<{ readonly detail: string }> {}

/** SQLSTATE class 28 (invalid authorization) and 3D000 (no such database) do not fix themselves. */
const refusal = (config: PipelineConfig, ssl: PgSsl, error: { code?: string; message: string }): PgLoginError | null => {
  const at = `PostgreSQL at ${config.postgres.host}:${config.postgres.port}`
  const { user, db } = config.postgres
  if (error.code === "28P01") {
    return new PgLoginError({
      detail: `${at} refused the password of user ${user} (${error.message}): check postgres.password ` +
        "(POSTGRES_PASSWORD, POSTGRES_PASSWORD_FILE or PG_URL)"
    })
  }
  if (error.code?.startsWith("28") === true) {
    const hint = ssl === false && /no encryption/.test(error.message)
      ? "; the server accepts this connection only over TLS: set postgres.sslmode (POSTGRES_SSLMODE) to require, verify-ca or verify-full"
      : ""
    return new PgLoginError({ detail: `${at} refused user ${user} on database ${db} (${error.message})${hint}` })
  }
  if (error.code === "3D000") return new PgLoginError({ detail: `${at}: ${error.message}: check postgres.db` })
  // negotiatePgSsl judged the certificate already; should `pg`'s own check still differ, say so.
  if (error.code !== undefined && isCertificateErrorCode(error.code)) {
    return new PgLoginError({ detail: `${at}: TLS refused (${error.message} [${error.code}]): check postgres.sslmode, postgres.sslrootcert and postgres.host` })
  }
  return null
}

/** One connection with the negotiated TLS and the password: what every later connection will meet. */
const login = (config: PipelineConfig, ssl: PgSsl) =>
  Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({
        host: config.postgres.host,
        port: config.postgres.port,
        database: config.postgres.db,
        user: config.postgres.user,
        password: Redacted.value(config.postgres.password),
        ssl,
        connectionTimeoutMillis: 5_000,
        application_name: "food-orders-startup-check"
      })
      client.on("error", () => undefined)
      try {
        await client.connect()
      } finally {
        await client.end().catch(() => undefined)
      }
    },
    catch: (cause) => {
      const error = cause instanceof Error ? cause as Error & { code?: string } : { message: String(cause) }
      return refusal(config, ssl, error) ?? new Unreachable({ detail: `PostgreSQL at ${config.postgres.host}:${config.postgres.port}: ${error.message}` })
    }
  })

/**
 * At start, before any pool: TLS negotiated per postgres.sslmode (once, for every connection) and
 * one login. A server that does not answer yet is waited for (bounded under `--once`); a refused
 * certificate, a server without the TLS the config requires, a wrong password or a missing pg_hba
 * line stop the program at once with the key to fix.
 */
export const connectPostgres = (config: PipelineConfig, options: { readonly once: boolean }) =>
  Effect.gen(function*() {
    const ssl = yield* negotiatePgSsl(config.postgres, config.postgres.host, config.postgres.port)
    yield* login(config, ssl)
    yield* Effect.logInfo("PostgreSQL reached").pipe(Effect.annotateLogs({
      postgres: `${config.postgres.host}:${config.postgres.port}/${config.postgres.db}`,
      user: config.postgres.user,
      sslmode: describeSsl(config.postgres, ssl)
    }))
    return ssl
  }).pipe(
    Effect.tapError((error) =>
      isWaitable(error) ? Effect.logWarning("waiting for PostgreSQL").pipe(Effect.annotateLogs({ error: error.detail })) : Effect.void
    ),
    Effect.retry({
      schedule: options.once ? Schedule.asVoid(onceBackoff) : Schedule.asVoid(outageBackoff().pipe(Schedule.upTo("1 hour"))),
      while: isWaitable
    }),
    Effect.catchTag("Unreachable", (error) => new PgLoginError({ detail: `gave up waiting for PostgreSQL: ${error.detail}` }))
  )

const isWaitable = (error: PgTlsError | PgLoginError | Unreachable): boolean =>
  error._tag === "Unreachable" || (error instanceof PgTlsError && error.reason === "unreachable")
