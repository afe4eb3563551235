import { describe, expect, it } from "vitest"
import { classifyS3Error, maskKeyId, type S3ErrorContext } from "../../src/layers/storage/s3Errors.ts"
import { isS3Path, keyOf, parseS3Location, urlOf } from "../../src/layers/storage/s3Location.ts"
import { s3SettingsFromEnv } from "../../src/layers/storage/s3TableStorage.ts"
import { isPermanentStorageError, StorageError } from "../../src/services/errors.ts"

const context: S3ErrorContext = {
  endpoint: "http://127.0.0.1:9000",
  bucket: "lake",
  region: "us-east-1",
  credentialSource: "the environment (AWS_ACCESS_KEY_ID=AKIA…(20 chars))"
}

const sdkError = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(name), { name, ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }), ...extra })

describe("s3 locations", () => {
  it("parses s3:// and s3a:// into bucket and prefix", () => {
    expect(isS3Path("s3://lake/output/orders")).toBe(true)
    expect(isS3Path("S3A://lake")).toBe(true)
    expect(isS3Path("/data/lake")).toBe(false)
    expect(parseS3Location("s3://lake/output/orders/")).toEqual({ bucket: "lake", prefix: "output/orders" })
    expect(parseS3Location("s3a://lake")).toEqual({ bucket: "lake", prefix: "" })
    expect(parseS3Location("s3://lake//a///b")).toEqual({ bucket: "lake", prefix: "a/b" })
    expect(() => parseS3Location("s3://Not_A_Bucket/x")).toThrow(/not a valid bucket name/)
    const location = parseS3Location("s3://lake/output/orders")
    expect(keyOf(location, "_delta_log/00000000000000000000.json")).toBe("output/orders/_delta_log/00000000000000000000.json")
    expect(urlOf(location)).toBe("s3://lake/output/orders")
    expect(urlOf(location, "date=2025-01-15/part-1.parquet")).toBe("s3://lake/output/orders/date=2025-01-15/part-1.parquet")
    expect(urlOf(parseS3Location("s3://lake"), "x")).toBe("s3://lake/x")
  })
})

describe("s3 settings from the environment", () => {
  it("reads the endpoint, region and path style the ecosystem's way", () => {
    expect(s3SettingsFromEnv({})).toEqual({ endpoint: undefined, region: undefined, forcePathStyle: undefined })
    expect(s3SettingsFromEnv({ AWS_ENDPOINT_URL: "http://minio:9000", AWS_DEFAULT_REGION: "eu-west-1" }))
      .toEqual({ endpoint: "http://minio:9000", region: "eu-west-1", forcePathStyle: undefined })
    expect(s3SettingsFromEnv({ AWS_ENDPOINT_URL_S3: "http://a:1", AWS_ENDPOINT_URL: "http://b:2", AWS_REGION: "x", AWS_S3_FORCE_PATH_STYLE: "false" }))
      .toEqual({ endpoint: "http://a:1", region: "x", forcePathStyle: false })
    expect(() => s3SettingsFromEnv({ AWS_S3_FORCE_PATH_STYLE: "maybe" })).toThrow(/AWS_S3_FORCE_PATH_STYLE/)
  })
})

describe("s3 error classification", () => {
  const classify = (error: unknown) => classifyS3Error(error, context)
  it("sorts SDK failures into permanent and transient reasons with a hint", () => {
    expect(classify(sdkError("NoSuchBucket", 404))).toMatchObject({ reason: "no-bucket", hint: expect.stringContaining("aws s3 mb s3://lake") })
    expect(classify(sdkError("NotFound", 404)).reason).toBe("no-bucket")
    expect(classify(sdkError("SignatureDoesNotMatch", 403))).toMatchObject({ reason: "bad-credentials", hint: expect.stringContaining("AKIA…") })
    expect(classify(sdkError("InvalidAccessKeyId", 403)).reason).toBe("bad-credentials")
    expect(classify(sdkError("CredentialsProviderError")).reason).toBe("bad-credentials")
    expect(classify(sdkError("AccessDenied", 403)).reason).toBe("access-denied")
    expect(classify(sdkError("RequestTimeTooSkewed", 403))).toMatchObject({ reason: "clock-skew", hint: expect.stringContaining("clock") })
    expect(classify(sdkError("PermanentRedirect", 301)).reason).toBe("wrong-region")
    expect(classify(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9000"), { code: "ECONNREFUSED" })))
      .toMatchObject({ reason: "unreachable", hint: expect.stringContaining("http://127.0.0.1:9000") })
    expect(classify(Object.assign(new Error("getaddrinfo ENOTFOUND minio"), { code: "ENOTFOUND" })).reason).toBe("unreachable")
    expect(classify(sdkError("TimeoutError")).reason).toBe("unreachable")
    expect(classify(sdkError("SlowDown", 503)).reason).toBe("throttled")
  })

  it("makes the start stop only on permanent reasons", () => {
    const error = (reason: StorageError["reason"]) => new StorageError({ path: "s3://lake", operation: "open", cause: "x", ...(reason ? { reason } : {}) })
    expect(isPermanentStorageError(error("no-bucket"))).toBe(true)
    expect(isPermanentStorageError(error("bad-credentials"))).toBe(true)
    expect(isPermanentStorageError(error("clock-skew"))).toBe(true)
    expect(isPermanentStorageError(error("unreachable"))).toBe(false)
    expect(isPermanentStorageError(error(undefined))).toBe(false)
    expect(isPermanentStorageError(new Error("no"))).toBe(false)
    expect(maskKeyId("AKIAIOSFODNN7EXAMPLE")).toBe("AKIA…(20 chars)")
  })
})
