import { Data } from "effect"

/** PostgreSQL could not be reached or the query failed. */
export class SourceError extends Data.TaggedError("SourceError")<{
  readonly reason: "unavailable" | "query" | "decode"
  readonly cause: unknown
}> {
  override get message() {
    return `order source ${this.reason}: ${describe(this.cause)}`
  }
}

/** The broker did not acknowledge, or could not be reached. */
export class BrokerError extends Data.TaggedError("BrokerError")<{
  readonly operation: "connect" | "publish" | "fetch" | "commit" | "admin"
  readonly cause: unknown
  /** The client gave up for good (its consumer stopped): retrying in this process cannot help. */
  readonly fatal?: boolean
}> {
  override get message() {
    const refusal = brokerRefusal(this.cause)
    return `kafka ${this.operation} failed: ${refusal ?? describe(this.cause)}${coordinatorHint(this.cause)}`
  }
}

/**
 * kafkajs reports a FindCoordinator the ACLs refused as "Failed to find group coordinator", the
 * broker's answer dropped on the way (its broker pool swallows each broker's error).
 */
const coordinatorHint = (cause: unknown): string =>
  chainOf(cause).some((e) => e["name"] === "KafkaJSGroupCoordinatorNotFound")
    ? " (on a cluster with ACLs this is also how a denied consumer group looks: the consumer needs READ on its group, " +
      "kafka.consumer_group or <topic>_lake_writer; README: Least privilege)"
    : ""

/** The errors a client error wraps (kafkajs: `cause`, `originalError`, `errors`), the error first. */
const chainOf = (error: unknown, depth = 0): Array<Record<string, unknown>> => {
  if (typeof error !== "object" || error === null || depth > 5) return []
  const e = error as Record<string, unknown>
  const nested = [e["cause"], e["originalError"], ...(Array.isArray(e["errors"]) ? e["errors"] : [])]
  return [e, ...nested.flatMap((n) => chainOf(n, depth + 1))]
}

/** Node's codes for a TLS peer whose certificate was not accepted (untrusted, expired, another name). */
export const isCertificateErrorCode = (code: string): boolean => /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ERR_TLS|ERR_SSL/.test(code)

/**
 * Kafka's answers that no retry changes, each with what to fix: a refused SASL login, a missing
 * ACL (the rights each program needs are in the README's "Least privilege"), a broker certificate
 * this client does not trust, TLS spoken to a plaintext listener. Null for everything else (a
 * broker down, a leader moving): those are waited out.
 */
export const brokerRefusal = (cause: unknown): string | null => {
  for (const e of chainOf(cause)) {
    const type = typeof e["type"] === "string" ? e["type"] : ""
    const name = typeof e["name"] === "string" ? e["name"] : ""
    const code = typeof e["code"] === "string" ? e["code"] : ""
    const message = typeof e["message"] === "string" ? e["message"] : ""
    if (name === "KafkaJSSASLAuthenticationError" || type === "SASL_AUTHENTICATION_FAILED" || type === "UNSUPPORTED_SASL_MECHANISM") {
      return `the broker refused the SASL login (${message}): check kafka.sasl_mechanism, kafka.sasl_username and kafka.sasl_password`
    }
    if (type === "TOPIC_AUTHORIZATION_FAILED") {
      return `the broker's ACLs deny a topic to this principal (${message}): the producer needs WRITE and DESCRIBE on its topics and the ` +
        "dead-letter topic; the consumer READ and DESCRIBE on its topics and WRITE on the dead-letter topic (README: Least privilege)"
    }
    if (type === "GROUP_AUTHORIZATION_FAILED") {
      return `the broker's ACLs deny the consumer group to this principal (${message}): the consumer needs READ on its group ` +
        "(kafka.consumer_group, and <table topic>_lake_writer for each table of tables:) (README: Least privilege)"
    }
    if (type === "CLUSTER_AUTHORIZATION_FAILED") {
      return `the broker's ACLs deny a cluster operation to this principal (${message}): creating missing topics needs CREATE ` +
        "(on the cluster or the topics); or create the topics beforehand (README: Least privilege)"
    }
    if (type === "TRANSACTIONAL_ID_AUTHORIZATION_FAILED") {
      return `the broker's ACLs deny a transactional id to this principal (${message}) (README: Least privilege)`
    }
    if (/ALERT/.test(code)) {
      return `the broker ended the TLS handshake (${message} [${code}]): it may require a client certificate signed by a CA it ` +
        "trusts: set kafka.ssl_certificate_location and kafka.ssl_key_location"
    }
    if (isCertificateErrorCode(code)) {
      return `the broker's TLS certificate is not trusted (${message}${code === "" ? "" : ` [${code}]`}): check kafka.ssl_ca_location, and that ` +
        "the broker's certificate names the host in kafka.brokers (or kafka.ssl_endpoint_identification_algorithm)"
    }
  }
  return null
}

/** A refusal, or a client that stopped for good: the program stops with the message rather than retry. */
export const isBrokerRefusal = (error: unknown): boolean =>
  error instanceof BrokerError && (error.fatal === true || brokerRefusal(error.cause) !== null)

/**
 * Why storage failed, when we could tell (object stores). Permanent reasons do not fix themselves:
 * a program should stop with the hint rather than retry.
 */
export type StorageFailure =
  | "unreachable" // wrong endpoint, DNS, refused, timed out: may come back
  | "throttled" // 503 SlowDown, 5xx: may come back
  | "conflict" // 409 ConditionalRequestConflict after our retries: may come back
  | "no-bucket"
  | "access-denied"
  | "bad-credentials"
  | "clock-skew"
  | "wrong-region"
  | "misconfigured" // a malformed datalake.path or AWS_* variable
  | "other"

const permanentFailures: ReadonlySet<StorageFailure> = new Set([
  "no-bucket",
  "access-denied",
  "bad-credentials",
  "clock-skew",
  "wrong-region",
  "misconfigured"
])

/** A state or lake file could not be read or written. */
export class StorageError extends Data.TaggedError("StorageError")<{
  readonly path: string
  readonly operation: "open" | "read" | "write" | "list" | "remove"
  readonly cause: unknown
  readonly reason?: StorageFailure
  /** What to do about it, for a person: `aws s3 mb s3://lake`, which credential source was used, ... */
  readonly hint?: string
}> {
  override get message() {
    // The hint says what happened and what to do; the cause (an SDK error can be just "UnknownError") follows.
    return this.hint === undefined
      ? `cannot ${this.operation} ${this.path}: ${describe(this.cause)}`
      : `cannot ${this.operation} ${this.path}: ${this.hint} [${describe(this.cause)}]`
  }
}

/** A storage failure that waiting will not fix (missing bucket, refused credentials, clock skew). */
export const isPermanentStorageError = (error: unknown): boolean =>
  error instanceof StorageError && error.reason !== undefined && permanentFailures.has(error.reason)

const describe = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "string" ? cause : JSON.stringify(cause)
