import { Redacted } from "effect"
import type { SASLOptions } from "kafkajs"
import { readFileSync } from "node:fs"
import type * as tls from "node:tls"
import type { PipelineConfig } from "../../config/PipelineConfig.ts"

/** What kafkajs takes for TLS and SASL; both absent for PLAINTEXT. */
export interface KafkaSecurity {
  readonly ssl?: tls.ConnectionOptions
  readonly sasl?: SASLOptions
}

const mechanisms = { "PLAIN": "plain", "SCRAM-SHA-256": "scram-sha-256", "SCRAM-SHA-512": "scram-sha-512" } as const

/**
 * The kafka section's security keys as kafkajs options. The files were found readable by
 * loadConfig (connectionSecurityChecks.ts); they are read here, once per process.
 */
export const kafkaSecurityOf = (kafka: PipelineConfig["kafka"]): KafkaSecurity => {
  const protocol = kafka.security_protocol
  const security: { ssl?: tls.ConnectionOptions; sasl?: SASLOptions } = {}
  if (protocol === "SSL" || protocol === "SASL_SSL") {
    const ssl: { -readonly [K in keyof tls.ConnectionOptions]: tls.ConnectionOptions[K] } = { rejectUnauthorized: true }
    if (kafka.ssl_ca_location !== undefined) ssl.ca = readFileSync(kafka.ssl_ca_location)
    if (kafka.ssl_certificate_location !== undefined) ssl.cert = readFileSync(kafka.ssl_certificate_location)
    if (kafka.ssl_key_location !== undefined) ssl.key = readFileSync(kafka.ssl_key_location)
    if (kafka.ssl_key_password !== undefined) ssl.passphrase = Redacted.value(kafka.ssl_key_password)
    // As the Java client's ssl.endpoint.identification.algorithm="": the chain is still verified.
    if (kafka.ssl_endpoint_identification_algorithm !== "https") ssl.checkServerIdentity = () => undefined
    security.ssl = ssl
  }
  if ((protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL") && kafka.sasl_mechanism !== undefined) {
    const password = kafka.sasl_password
    const sasl = { mechanism: mechanisms[kafka.sasl_mechanism], username: kafka.sasl_username ?? "" }
    // Not enumerable: a settings object printed or serialised (JSON.stringify, a spread) leaves it out.
    Object.defineProperty(sasl, "password", { enumerable: false, get: () => (password === undefined ? "" : Redacted.value(password)) })
    security.sasl = sasl as SASLOptions
  }
  return security
}

/** How the connection reads in logs. */
export const describeKafkaSecurity = (kafka: PipelineConfig["kafka"]): string =>
  kafka.security_protocol.startsWith("SASL")
    ? `${kafka.security_protocol} ${kafka.sasl_mechanism ?? ""} as ${kafka.sasl_username ?? "?"}`
    : kafka.security_protocol
