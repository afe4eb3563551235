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

/** The Kafka client's `security.protocol`, with its values as users already write them. */
export const securityProtocols = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] as const
export type SecurityProtocol = typeof securityProtocols[number]

/** `sasl.mechanism`s the client speaks (kafkajs: PLAIN and SCRAM; GSSAPI, OAUTHBEARER and AWS_MSK_IAM are not offered). */
export const saslMechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] as const
export type SaslMechanism = typeof saslMechanisms[number]
