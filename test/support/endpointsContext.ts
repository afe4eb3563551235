/**
 * What globalSetup hands to integration tests through vitest's provide/inject.
 * Kept apart from endpoints.ts because that module calls inject(), which only works inside test files.
 */
export type EndpointSource = "env" | "testcontainers" | "local-stack"

/**
 * A real S3-compatible server and a bucket the tests may write to (S3Proxy, MinIO, or a stack from
 * the environment). Clients use path-style addressing (`forcePathStyle: true`). Tests write under
 * their own unique prefix: the bucket is shared by every file of the run.
 */
export interface S3Endpoints {
  /** `http://host:port`, as AWS_ENDPOINT_URL_S3. */
  readonly endpoint: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly region: string
  readonly bucket: string
}

export interface Endpoints {
  /** postgres://user:password@host:port/database; the database is for tests only (except with source "env"). */
  readonly pgUrl: string
  /** Comma-separated host:port list for kafkajs (`brokers: kafkaBrokers.split(",")`). */
  readonly kafkaBrokers: string
  readonly source: EndpointSource
  readonly kafkaVersion?: string
  /** null outside CI when no S3 server could be found or started (suites needing it skip; CI fails instead). */
  readonly s3: S3Endpoints | null
}

declare module "vitest" {
  export interface ProvidedContext {
    /** null when no PostgreSQL + Kafka could be found: the integration suites are skipped (CI fails instead). */
    endpoints: Endpoints | null
  }
}
