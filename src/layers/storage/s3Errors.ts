import { isCertificateErrorCode, type StorageFailure } from "../../services/errors.ts"

/** What the hints may say about where we were talking to and as whom. Never a secret. */
export interface S3ErrorContext {
  readonly endpoint: string
  readonly bucket: string
  readonly region: string
  /** E.g. `AWS_ACCESS_KEY_ID=AKIA…(20 chars)` or `the default credential chain`. */
  readonly credentialSource: string
}

interface SdkErrorShape {
  readonly name?: string
  readonly Code?: string
  readonly code?: string
  readonly message?: string
  readonly $metadata?: { readonly httpStatusCode?: number; readonly attempts?: number }
  readonly cause?: unknown
}

const shape = (error: unknown): SdkErrorShape => (typeof error === "object" && error !== null ? error as SdkErrorShape : {})

export const statusOf = (error: unknown): number | undefined => shape(error).$metadata?.httpStatusCode

/** The S3 error code (`NoSuchKey`, `PreconditionFailed`, ...) or the Node error code (`ECONNREFUSED`). */
export const codeOf = (error: unknown): string | undefined => {
  const e = shape(error)
  return e.Code ?? e.code ?? shape(e.cause).code ?? e.name
}

const networkCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "TimeoutError",
  "RequestTimeout",
  "RequestTimeoutException",
  "AbortError"
])

const credentialCodes = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "CredentialsProviderError"
])

/** An access key id shown as its first four characters and its length: enough to tell keys apart. */
export const maskKeyId = (id: string): string => `${id.slice(0, 4)}…(${id.length} chars)`

/**
 * Sorts an SDK failure into a StorageFailure with a hint that says what to do. Permanent reasons
 * (a missing bucket, refused credentials, clock skew, wrong region) make the lake stop at start.
 */
export const classifyS3Error = (error: unknown, context: S3ErrorContext): { readonly reason: StorageFailure; readonly hint: string } => {
  const code = codeOf(error) ?? ""
  const status = statusOf(error)
  const { bucket, endpoint, credentialSource } = context
  if (code === "NoSuchBucket" || (code === "NotFound" && status === 404)) {
    return {
      reason: "no-bucket",
      hint: `bucket ${bucket} does not exist at ${endpoint}: create it (aws s3 mb s3://${bucket}, or mc mb <alias>/${bucket})`
    }
  }
  if (code === "RequestTimeTooSkewed") {
    return {
      reason: "clock-skew",
      hint: "this machine's clock is too far from the server's (more than 15 minutes): synchronise it (timedatectl set-ntp true, chrony)"
    }
  }
  if (credentialCodes.has(code) || (code === "Unknown" && status === 403 && /signature/i.test(shape(error).message ?? ""))) {
    return {
      reason: "bad-credentials",
      hint: `the server at ${endpoint} refused the credentials from ${credentialSource} (${code}): ` +
        "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and, for temporary keys, AWS_SESSION_TOKEN"
    }
  }
  if (code === "AccessDenied" || code === "Forbidden" || status === 403) {
    return {
      reason: "access-denied",
      hint: `the credentials from ${credentialSource} may not use bucket ${bucket}: ` +
        "grant s3:ListBucket on the bucket and s3:GetObject, s3:PutObject, s3:DeleteObject, s3:AbortMultipartUpload on its objects"
    }
  }
  if (/region is missing/i.test(shape(error).message ?? "")) {
    return { reason: "wrong-region", hint: "no region is configured: set AWS_REGION (or region in the AWS profile)" }
  }
  if (code === "PermanentRedirect" || code === "AuthorizationHeaderMalformed" || status === 301) {
    return {
      reason: "wrong-region",
      hint: `bucket ${bucket} is not in region ${context.region}: set AWS_REGION to the bucket's region`
    }
  }
  if (isCertificateErrorCode(code)) {
    return {
      reason: "misconfigured",
      hint: `the TLS certificate of ${endpoint} is not trusted (${code}): set AWS_CA_BUNDLE to the PEM of the CA that signed it, ` +
        "and check that the endpoint's host name is one the certificate names"
    }
  }
  if (networkCodes.has(code) || status === undefined) {
    return {
      reason: "unreachable",
      hint: `cannot reach ${endpoint} (${code || "no answer"}): check AWS_ENDPOINT_URL_S3 and that the server runs`
    }
  }
  if (code === "SlowDown" || code === "ServiceUnavailable" || code === "InternalError" || status >= 500) {
    return { reason: "throttled", hint: `${endpoint} answered ${status} ${code}: retrying later may help` }
  }
  return { reason: "other", hint: `${endpoint} answered ${status} ${code}` }
}
