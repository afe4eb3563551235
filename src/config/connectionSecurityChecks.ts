import { accessSync, constants } from "node:fs"
import type { PipelineConfig } from "./PipelineConfig.ts"

export interface SecurityProblem {
  readonly key: string
  readonly reason: string
}

const readable = (path: string): string | null => {
  try {
    accessSync(path, constants.R_OK)
    return null
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error)
  }
}

/**
 * What the schema cannot say of the connection-security keys: the keys a protocol needs are there,
 * keys that a protocol would ignore are refused (credentials configured but never sent would look like
 * a secured connection), and every certificate or key file can be read now, not at the first connect.
 */
export const connectionSecurityProblem = (config: PipelineConfig): SecurityProblem | undefined => {
  const kafka = config.kafka
  const protocol = kafka.security_protocol
  const sasl = protocol === "SASL_PLAINTEXT" || protocol === "SASL_SSL"
  const tls = protocol === "SSL" || protocol === "SASL_SSL"
  if (sasl) {
    for (const key of ["sasl_mechanism", "sasl_username", "sasl_password"] as const) {
      if (kafka[key] === undefined) return { key: `kafka.${key}`, reason: `is missing: kafka.security_protocol ${protocol} logs in with SASL` }
    }
  } else {
    for (const key of ["sasl_mechanism", "sasl_username", "sasl_password"] as const) {
      if (kafka[key] !== undefined) {
        return { key: `kafka.${key}`, reason: `is set, but kafka.security_protocol is ${protocol}, which sends no SASL login: use SASL_SSL (or SASL_PLAINTEXT)` }
      }
    }
  }
  if (!tls) {
    for (const key of ["ssl_ca_location", "ssl_certificate_location", "ssl_key_location", "ssl_key_password"] as const) {
      if (kafka[key] !== undefined) {
        return { key: `kafka.${key}`, reason: `is set, but kafka.security_protocol is ${protocol}, which is not TLS: use SSL or SASL_SSL` }
      }
    }
  }
  if ((kafka.ssl_certificate_location === undefined) !== (kafka.ssl_key_location === undefined)) {
    return { key: kafka.ssl_key_location === undefined ? "kafka.ssl_key_location" : "kafka.ssl_certificate_location", reason: "a client certificate and its key go together" }
  }
  if ((config.postgres.sslcert === undefined) !== (config.postgres.sslkey === undefined)) {
    return { key: config.postgres.sslkey === undefined ? "postgres.sslkey" : "postgres.sslcert", reason: "a client certificate and its key go together" }
  }
  const { basic_auth_user: user, basic_auth_password: password } = config.observability
  if ((user === undefined) !== (password === undefined)) {
    return { key: user === undefined ? "observability.basic_auth_user" : "observability.basic_auth_password", reason: "basic auth needs both a user and a password" }
  }
  const files: ReadonlyArray<readonly [string, string | undefined]> = [
    ["postgres.sslrootcert", config.postgres.sslrootcert === "system" ? undefined : config.postgres.sslrootcert],
    ["postgres.sslcert", config.postgres.sslcert],
    ["postgres.sslkey", config.postgres.sslkey],
    ["kafka.ssl_ca_location", kafka.ssl_ca_location],
    ["kafka.ssl_certificate_location", kafka.ssl_certificate_location],
    ["kafka.ssl_key_location", kafka.ssl_key_location]
  ]
  for (const [key, path] of files) {
    if (path === undefined) continue
    const problem = readable(path)
    if (problem !== null) return { key, reason: `cannot read ${path} (${problem})` }
  }
  return undefined
}
