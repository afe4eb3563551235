import { NodeContext } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { loadConfig } from "../../src/config/loadConfig.ts"
import { tlsOptionsOf } from "../../src/layers/postgres/pgTls.ts"
import { s3SettingsFromEnv } from "../../src/layers/storage/s3TableStorage.ts"

const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fop-security-"))
afterAll(() => Fs.rmSync(dir, { recursive: true, force: true }))

const secretFile = (name: string, text: string) => {
  const file = Path.join(dir, name)
  Fs.writeFileSync(file, text)
  return file
}

const load = (env: Record<string, string>) =>
  loadConfig("configs/orders_stream.yml", env).pipe(Effect.either, Effect.provide(NodeContext.layer))

const errorOf = (env: Record<string, string>) =>
  load(env).pipe(Effect.map((result) => {
    if (Either.isRight(result)) throw new Error("expected a ConfigError")
    return result.left
  }))

describe("PostgreSQL TLS and secrets in the configuration", () => {
  it.effect("defaults to sslmode prefer, as libpq and pgJDBC do; a reference config keeps working", () =>
    Effect.gen(function*() {
      const config = Either.getOrThrow(yield* load({}))
      expect(config.postgres.sslmode).toBe("prefer")
      expect(config.postgres.sslrootcert).toBeUndefined()
    }))

  it.effect("reads libpq's TLS parameters from PG_URL, and refuses one it does not know, without quoting the URL", () =>
    Effect.gen(function*() {
      const [ca, cert, key] = ["ca.pem", "c.pem", "k.pem"].map((name) => secretFile(name, "pem"))
      const config = Either.getOrThrow(yield* load({
        PG_URL: "postgresql://app:pw%2Fx@db.example.com:6432/orders?sslmode=verify-full&" +
          new URLSearchParams({ sslrootcert: ca!, sslcert: cert!, sslkey: key!, sslpassword: "kp" }).toString()
      }))
      expect(config.postgres.sslmode).toBe("verify-full")
      expect(config.postgres.sslrootcert).toBe(ca)
      expect(config.postgres.sslcert).toBe(cert)
      expect(config.postgres.sslkey).toBe(key)
      expect(Redacted.value(config.postgres.sslpassword!)).toBe("kp")
      expect(Redacted.value(config.postgres.password)).toBe("pw/x")
      expect(config.postgres.jdbc_url).toBe("jdbc:postgresql://db.example.com:6432/orders")

      const unknown = yield* errorOf({ PG_URL: "postgres://app:hunter2@db:5432/orders?sslmode=require&connect_timeout=3" })
      expect(unknown.key).toBe("PG_URL (environment)")
      expect(unknown.reason).toContain(`Unknown parameter "connect_timeout"`)
      expect(unknown.message).not.toContain("hunter2")
    }))

  it.effect("names the key of an sslmode it does not take", () =>
    Effect.gen(function*() {
      const error = yield* errorOf({ POSTGRES_SSLMODE: "allow" })
      expect(error.key).toBe("postgres.sslmode from POSTGRES_SSLMODE (environment)")
      expect(error.reason).toContain(`"verify-full"`)
    }))

  it.effect("reads <NAME>_FILE for any key, dropping the file's trailing newline; both at once is refused", () =>
    Effect.gen(function*() {
      const password = secretFile("pg-password", "from-a-file\n")
      const config = Either.getOrThrow(yield* load({ POSTGRES_PASSWORD_FILE: password, KAFKA_BROKERS_FILE: secretFile("brokers", "b1:9093") }))
      expect(Redacted.value(config.postgres.password)).toBe("from-a-file")
      expect(config.kafka.brokers).toBe("b1:9093")

      const url = Either.getOrThrow(yield* load({ PG_URL_FILE: secretFile("url", "postgres://u:p@h:5433/d?sslmode=require\n") }))
      expect(url.postgres.port).toBe(5433)
      expect(url.postgres.sslmode).toBe("require")

      const both = yield* errorOf({ POSTGRES_PASSWORD: "x", POSTGRES_PASSWORD_FILE: password })
      expect(both.key).toBe("POSTGRES_PASSWORD_FILE (environment)")
      expect(both.reason).toContain("POSTGRES_PASSWORD is set too")

      const missing = yield* errorOf({ POSTGRES_PASSWORD_FILE: Path.join(dir, "absent") })
      expect(missing.key).toBe("POSTGRES_PASSWORD_FILE (environment)")
      expect(missing.reason).toContain(Path.join(dir, "absent"))
    }))
})

describe("Kafka security in the configuration", () => {
  it.effect("reads the client properties users know, upper-casing the protocol and mechanism", () =>
    Effect.gen(function*() {
      const ca = secretFile("kafka-ca.pem", "pem")
      const config = Either.getOrThrow(yield* load({
        KAFKA_SECURITY_PROTOCOL: "sasl_ssl",
        KAFKA_SASL_MECHANISM: "scram-sha-512",
        KAFKA_SASL_USERNAME: "pipeline",
        KAFKA_SASL_PASSWORD_FILE: secretFile("sasl", "kafka-secret\n"),
        KAFKA_SSL_CA_LOCATION: ca
      }))
      expect(config.kafka.security_protocol).toBe("SASL_SSL")
      expect(config.kafka.sasl_mechanism).toBe("SCRAM-SHA-512")
      expect(Redacted.value(config.kafka.sasl_password!)).toBe("kafka-secret")
      expect(config.kafka.ssl_ca_location).toBe(ca)
      expect(config.kafka.ssl_endpoint_identification_algorithm).toBe("https")
      expect(Either.getOrThrow(yield* load({})).kafka.security_protocol).toBe("PLAINTEXT")
    }))

  it.effect("names the key a protocol misses, a key it would ignore, and a file it cannot read", () =>
    Effect.gen(function*() {
      const missing = yield* errorOf({ KAFKA_SECURITY_PROTOCOL: "SASL_SSL", KAFKA_SASL_MECHANISM: "PLAIN", KAFKA_SASL_USERNAME: "u" })
      expect(missing.key).toBe("kafka.sasl_password")
      expect(missing.reason).toContain("SASL_SSL logs in with SASL")

      const ignored = yield* errorOf({ KAFKA_SECURITY_PROTOCOL: "SSL", KAFKA_SASL_USERNAME: "u" })
      expect(ignored.key).toBe("kafka.sasl_username from KAFKA_SASL_USERNAME (environment)")
      expect(ignored.reason).toContain("use SASL_SSL")

      const plaintextCa = yield* errorOf({ KAFKA_SSL_CA_LOCATION: secretFile("ca2.pem", "pem") })
      expect(plaintextCa.reason).toContain("is not TLS")

      const unreadable = yield* errorOf({ KAFKA_SECURITY_PROTOCOL: "SSL", KAFKA_SSL_CA_LOCATION: Path.join(dir, "absent.pem") })
      expect(unreadable.key).toBe("kafka.ssl_ca_location from KAFKA_SSL_CA_LOCATION (environment)")
      expect(unreadable.reason).toContain("ENOENT")

      const mechanism = yield* errorOf({ KAFKA_SECURITY_PROTOCOL: "SASL_SSL", KAFKA_SASL_MECHANISM: "GSSAPI" })
      expect(mechanism.key).toContain("kafka.sasl_mechanism")
    }))
})

describe("tlsOptionsOf", () => {
  const ca = secretFile("root.pem", "-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n")
  const options = (config: Parameters<typeof tlsOptionsOf>[0], host = "db.example.com") => Effect.either(tlsOptionsOf(config, host))

  it.effect("maps each sslmode as libpq does", () =>
    Effect.gen(function*() {
      expect(Either.getOrThrow(yield* options({ sslmode: "disable" }))).toBeNull()
      expect(Either.getOrThrow(yield* options({ sslmode: "prefer" }))).toEqual({ rejectUnauthorized: false })
      expect(Either.getOrThrow(yield* options({ sslmode: "require" }))).toEqual({ rejectUnauthorized: false })

      // A root certificate turns require into verify-ca (libpq's rule).
      const requireWithCa = Either.getOrThrow(yield* options({ sslmode: "require", sslrootcert: ca }))!
      expect(requireWithCa.rejectUnauthorized).toBe(true)
      expect(requireWithCa.checkServerIdentity?.("elsewhere", {} as never)).toBeUndefined()

      const full = Either.getOrThrow(yield* options({ sslmode: "verify-full", sslrootcert: ca }))!
      expect(full.rejectUnauthorized).toBe(true)
      expect(full.servername).toBe("db.example.com")
      expect(full.checkServerIdentity).toBeUndefined()
      expect(String(full.ca)).toContain("not really")

      // "system": Node's bundled CAs, nothing read.
      const system = Either.getOrThrow(yield* options({ sslmode: "verify-full", sslrootcert: "system" }))!
      expect(system.ca).toBeUndefined()
      // An IP address: no servername (TLS forbids one), the certificate checked against the address.
      const byAddress = Either.getOrThrow(yield* options({ sslmode: "verify-full", sslrootcert: ca }, "10.0.0.5"))!
      expect(byAddress).not.toHaveProperty("servername")
      const forLocalhost = { subject: { CN: "localhost" }, subjectaltname: "DNS:localhost" } as never
      expect(byAddress.checkServerIdentity?.("localhost", forLocalhost)).toBeInstanceOf(Error)
      const forAddress = { subject: { CN: "db" }, subjectaltname: "IP Address:10.0.0.5" } as never
      expect(byAddress.checkServerIdentity?.("localhost", forAddress)).toBeUndefined()
    }))

  it.effect("names the key of a file it cannot read, and a certificate without its key", () =>
    Effect.gen(function*() {
      const unreadable = yield* options({ sslmode: "verify-ca", sslrootcert: Path.join(dir, "nope.pem") })
      expect(Either.isLeft(unreadable) && unreadable.left.message).toContain("postgres.sslrootcert")
      const half = yield* options({ sslmode: "require", sslcert: ca })
      expect(Either.isLeft(half) && half.left.message).toContain("postgres.sslcert and postgres.sslkey go together")
    }))
})

describe("s3SettingsFromEnv", () => {
  it("takes keys from *_FILE and a CA bundle, and names what it cannot use", () => {
    const keyId = secretFile("aws-key-id", "AKIAEXAMPLE\n")
    const secret = secretFile("aws-secret", "s3-secret\n")
    const ca = secretFile("aws-ca.pem", "pem bytes")
    const settings = s3SettingsFromEnv({ AWS_ACCESS_KEY_ID_FILE: keyId, AWS_SECRET_ACCESS_KEY_FILE: secret, AWS_CA_BUNDLE: ca })
    expect(settings.credentials).toEqual({ accessKeyId: "AKIAEXAMPLE", secretAccessKey: "s3-secret" })
    expect(String(settings.caBundle)).toBe("pem bytes")
    // Keys in plain variables stay with the SDK's own chain.
    expect(s3SettingsFromEnv({ AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b" }).credentials).toBeUndefined()
    expect(() => s3SettingsFromEnv({ AWS_SECRET_ACCESS_KEY: "x", AWS_SECRET_ACCESS_KEY_FILE: secret })).toThrow("AWS_SECRET_ACCESS_KEY is set too")
    expect(() => s3SettingsFromEnv({ AWS_SECRET_ACCESS_KEY_FILE: secret })).toThrow("go together")
    expect(() => s3SettingsFromEnv({ AWS_CA_BUNDLE: Path.join(dir, "none.pem") })).toThrow("AWS_CA_BUNDLE: cannot read")
  })
})
