/**
 * What globalSetup hands to integration tests through vitest's provide/inject.
 * Kept apart from endpoints.ts because that module calls inject(), which only works inside test files.
 */
export type EndpointSource = "env" | "testcontainers" | "local-stack"

export interface Endpoints {
  /** postgres://user:password@host:port/database; the database is for tests only (except with source "env"). */
  readonly pgUrl: string
  /** Comma-separated host:port list for kafkajs (`brokers: kafkaBrokers.split(",")`). */
  readonly kafkaBrokers: string
  readonly source: EndpointSource
  readonly kafkaVersion?: string
}

declare module "vitest" {
  export interface ProvidedContext {
    /** null when no PostgreSQL + Kafka could be found: the integration suites are skipped (CI fails instead). */
    endpoints: Endpoints | null
  }
}
