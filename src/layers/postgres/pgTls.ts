import { Data, Effect, Redacted } from "effect"
import { existsSync, readFileSync } from "node:fs"
import * as net from "node:net"
import { homedir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import type { SslMode } from "../../config/connectionSecurity.ts"


/** The postgres keys that shape TLS, as configured (paths not yet read). */
export interface PgTlsConfig {
  readonly sslmode: SslMode
  /** A PEM file of trusted CAs, or `system` for Node's bundled CAs (libpq 16's spelling). */
  readonly sslrootcert?: string | undefined
  readonly sslcert?: string | undefined
  readonly sslkey?: string | undefined
  readonly sslpassword?: Redacted.Redacted<string> | undefined
}

/** What every connection then uses: no TLS, or TLS with these options (what `pg`'s `ssl` takes). */
export type PgSsl = false | tls.ConnectionOptions

export type PgTlsFailure =
  | "unreachable" // no answer yet: waited for like any outage
  | "files" // a CA, certificate or key file that cannot be read
  | "not-offered" // the server has no TLS and sslmode requires it
  | "certificate" // the handshake failed: the server's certificate is not trusted, or not for this host

export class PgTlsError extends Data.TaggedError("PgTlsError")<{
  readonly reason: PgTlsFailure
  readonly detail: string
}> {
  override get message() {
    return this.detail
  }
}

const verifies = (mode: SslMode) => mode === "verify-ca" || mode === "verify-full"

/**
 * libpq's reading of the keys: a root certificate given with `require` makes it `verify-ca`; the
 * verify modes without one look for ~/.postgresql/root.crt, and fail without it rather than trust
 * anyone.
 */
const effectiveMode = (config: PgTlsConfig): SslMode =>
  config.sslmode === "require" && config.sslrootcert !== undefined ? "verify-ca" : config.sslmode

const readPem = (key: string, path: string): Buffer => {
  try {
    return readFileSync(path)
  } catch (error) {
    throw new PgTlsError({ reason: "files", detail: `postgres.${key} ${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? String(error)})` })
  }
}

/** The TLS options for `mode`, its files read now (a missing file is named at start, not per connection). */
export const tlsOptionsOf = (config: PgTlsConfig, host: string): Effect.Effect<tls.ConnectionOptions | null, PgTlsError> =>
  Effect.try({
    try: () => {
      const mode = effectiveMode(config)
      if (mode === "disable") return null
      const options: { -readonly [K in keyof tls.ConnectionOptions]: tls.ConnectionOptions[K] } = { rejectUnauthorized: verifies(mode) }
      if (verifies(mode)) {
        const rootCert = config.sslrootcert ?? join(homedir(), ".postgresql", "root.crt")
        if (config.sslrootcert === undefined && !existsSync(rootCert)) {
          throw new PgTlsError({
            reason: "files",
            detail: `postgres.sslmode ${config.sslmode} checks the server's certificate and needs the CA that signed it: set ` +
              `postgres.sslrootcert (POSTGRES_SSLROOTCERT, or ?sslrootcert= in PG_URL) to a PEM file, or to "system" for the usual public CAs`
          })
        }
        if (rootCert !== "system") options.ca = readPem("sslrootcert", rootCert)
        // verify-ca trusts any name the CA signed; verify-full (Node's default check) wants this host.
        if (mode === "verify-ca") options.checkServerIdentity = () => undefined
        else if (net.isIP(host) === 0) options.servername = host
        // `pg` names no host to TLS for an IP address, and Node would then check the certificate
        // against "localhost": check it against the address itself.
        else options.checkServerIdentity = (_, cert) => tls.checkServerIdentity(host, cert)
      }
      if (config.sslcert !== undefined) options.cert = readPem("sslcert", config.sslcert)
      if (config.sslkey !== undefined) options.key = readPem("sslkey", config.sslkey)
      if (config.sslpassword !== undefined) options.passphrase = Redacted.value(config.sslpassword)
      if ((options.cert === undefined) !== (options.key === undefined)) {
        throw new PgTlsError({ reason: "files", detail: "postgres.sslcert and postgres.sslkey go together: a client certificate needs its key" })
      }
      return options
    },
    catch: (error) => error instanceof PgTlsError ? error : new PgTlsError({ reason: "files", detail: String(error) })
  })

/** PostgreSQL's SSLRequest: length 8, then the code 1234/5679. */
const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])

const where = (host: string, port: number) => `PostgreSQL at ${host}:${port}`

/**
 * Asks the server whether it speaks TLS (the first byte of its answer to SSLRequest: S or N), as
 * libpq does before every connection. Resolves with the open socket when the answer is S, so the
 * handshake can follow on it.
 */
const askForTls = (host: string, port: number) =>
  Effect.async<net.Socket | null, PgTlsError>((resume) => {
    const socket = net.connect({ host, port })
    socket.setTimeout(5_000)
    const fail = (detail: string) => {
      socket.destroy()
      resume(Effect.fail(new PgTlsError({ reason: "unreachable", detail: `${where(host, port)}: ${detail}` })))
    }
    socket.once("connect", () => socket.write(sslRequest))
    socket.once("timeout", () => fail("no answer within 5 s"))
    socket.once("error", (error) => fail(error.message))
    socket.once("data", (data) => {
      socket.removeAllListeners("error").removeAllListeners("timeout")
      socket.setTimeout(0)
      // The server says nothing more until the ClientHello: hold the stream for the TLS socket.
      socket.pause()
      socket.on("error", () => undefined)
      if (data[0] === 0x53) return resume(Effect.succeed(socket))
      socket.destroy()
      resume(Effect.succeed(null))
    })
    return Effect.sync(() => socket.destroy())
  })

/** The handshake on `socket`, with the options the connections will use: the certificate is judged now, once. */
const handshake = (socket: net.Socket, options: tls.ConnectionOptions, host: string, port: number, mode: SslMode) =>
  Effect.async<void, PgTlsError>((resume) => {
    // `host` is what the certificate is checked against when no servername is set (an IP address).
    const secure = tls.connect({ ...options, socket, host })
    secure.once("secureConnect", () => {
      secure.destroy()
      resume(Effect.void)
    })
    secure.once("error", (error: NodeJS.ErrnoException) => {
      secure.destroy()
      const hint = mode === "verify-full"
        ? "check postgres.sslrootcert, and that postgres.host is a name in the server's certificate"
        : "check postgres.sslrootcert (and postgres.sslcert / sslkey if the server asks for a client certificate)"
      resume(Effect.fail(new PgTlsError({
        reason: "certificate",
        detail: `${where(host, port)}: the TLS handshake failed (sslmode ${mode}): ${error.message}${error.code === undefined ? "" : ` [${error.code}]`}; ${hint}`
      })))
    })
    return Effect.sync(() => secure.destroy())
  })

/**
 * What `pg` gets as `ssl` for every connection (the query pool, the snapshot, the replication
 * stream): decided once at start. `prefer` asks the server; the modes that require TLS fail here
 * when it has none, and every TLS mode does one handshake here, so a wrong CA or host name is an
 * error at start naming the keys to fix, not a retry loop later.
 */
export const negotiatePgSsl = (config: PgTlsConfig, host: string, port: number): Effect.Effect<PgSsl, PgTlsError> =>
  Effect.gen(function*() {
    const options = yield* tlsOptionsOf(config, host)
    if (options === null) return false
    const mode = effectiveMode(config)
    return yield* Effect.acquireUseRelease(
      askForTls(host, port),
      (socket) =>
        Effect.gen(function*() {
          if (socket === null) {
            if (mode === "prefer") return false as const
            return yield* new PgTlsError({
              reason: "not-offered",
              detail: `${where(host, port)} does not offer TLS, and postgres.sslmode is ${config.sslmode}: turn ssl on in the ` +
                `server, or set postgres.sslmode (POSTGRES_SSLMODE) to prefer or disable if plaintext is acceptable here`
            })
          }
          yield* handshake(socket, options, host, port, mode)
          return options
        }),
      (socket) => Effect.sync(() => socket?.destroy())
    )
  })

/** How a configured TLS reads in logs: the mode, and whether the connections do use it. */
export const describeSsl = (config: PgTlsConfig, ssl: PgSsl) =>
  ssl === false ? `${config.sslmode} (plaintext)` : `${effectiveMode(config)} (TLS)`
