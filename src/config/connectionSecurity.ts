/**
 * The vocabulary of the connection-security keys, shared by the config schema and the layers that
 * apply them (src/layers/postgres/pgTls.ts).
 */

/**
 * libpq's sslmode, minus `allow` (plaintext first, TLS only when the server insists: nobody asks for
 * it). `prefer`, libpq's and pgJDBC's default, is TLS when the server offers it, unverified.
 */
export const sslModes = ["disable", "prefer", "require", "verify-ca", "verify-full"] as const
export type SslMode = typeof sslModes[number]
