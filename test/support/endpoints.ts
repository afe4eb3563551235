import { describe, inject, it } from "vitest"
import type { Endpoints, S3Endpoints } from "./endpointsContext.ts"

export type { EndpointSource, Endpoints, S3Endpoints } from "./endpointsContext.ts"

/** Endpoints resolved once per run by test/support/globalSetup.ts; null when none were available. */
export const endpoints: Endpoints | null = inject("endpoints") ?? null

/**
 * A suite that needs the real PostgreSQL and Kafka. Runs when globalSetup found them; otherwise it is
 * reported as skipped (globalSetup has printed why, and fails the run instead when CI is set).
 * `fn` receives the endpoints, already known to be present.
 */
export const describeIntegration = (name: string, fn: (endpoints: Endpoints) => void): void => {
  describe.runIf(endpoints !== null)(name, () => {
    if (endpoints === null) {
      // Registered only so the report shows what did not run.
      it("needs PostgreSQL and Kafka (see the SKIPPED banner above)", () => undefined)
      return
    }
    fn(endpoints)
  })
}

/** The endpoints, or a thrown error naming why they are missing (for code outside describeIntegration). */
export const requireEndpoints = (): Endpoints => {
  if (endpoints === null) throw new Error("no integration endpoints: run through the integration project (see globalSetup's banner)")
  return endpoints
}

/**
 * A suite that needs a real S3-compatible server (`endpoints.s3`). Skipped, with a placeholder test
 * naming why, when globalSetup found none (CI fails the run instead).
 */
export const describeS3 = (name: string, fn: (s3: S3Endpoints, endpoints: Endpoints) => void): void => {
  const s3 = endpoints?.s3 ?? null
  describe.runIf(s3 !== null)(name, () => {
    if (endpoints === null || s3 === null) {
      it("needs an S3 server (see the SKIPPED banner above)", () => undefined)
      return
    }
    fn(s3, endpoints)
  })
}
