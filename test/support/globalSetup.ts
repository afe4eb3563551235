/**
 * Runs once per integration run, in the main vitest process: finds a real PostgreSQL, Kafka and an
 * S3-compatible server (see endpointSources.ts), hands them to the tests as `inject("endpoints")`, and stops whatever
 * it started when the run ends. With nothing available it skips the suite loudly, or fails the run
 * when CI is set: a CI run that silently tested nothing would look green.
 */
import type { TestProject } from "vitest/node"
import { buildPrograms } from "../../scripts/programs.ts"
import type { Endpoints } from "./endpointsContext.ts"
import { type Attempt, fromEnv, fromLocalStack, fromTestcontainers } from "./endpointSources.ts"
import { dropStaleTestSlots, ensureLocalLogicalWal } from "./logicalPostgres.ts"

const isCi = (): boolean => {
  const ci = process.env["CI"]
  return ci !== undefined && ci !== "" && ci !== "0" && ci !== "false"
}

const log = (line: string) => process.stderr.write(`[integration] ${line}\n`)

const banner = (lines: ReadonlyArray<string>): string => {
  const rule = "!".repeat(78)
  return ["", rule, ...lines.map((line) => `!!  ${line}`), rule, ""].join("\n") + "\n"
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error))

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The AWS SDK warns once per process that releases after January 2027 need Node 22; the version is
  // pinned (object-storage.md), so in test output it is only noise. Test workers and the programs
  // the tests start inherit this.
  process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true"
  // The tests start the programs as `npm run` does: from the bundle, built from the sources now.
  buildPrograms()
  const reasons: string[] = []
  const sources: ReadonlyArray<readonly [string, () => Attempt | Promise<Attempt>]> = [
    ["env", fromEnv],
    ["testcontainers", fromTestcontainers],
    ["local-stack", fromLocalStack]
  ]
  for (const [name, attempt] of sources) {
    const started = Date.now()
    let outcome: Attempt
    try {
      outcome = await attempt()
    } catch (error) {
      outcome = { skipped: `failed: ${message(error)}` }
    }
    if ("skipped" in outcome) {
      reasons.push(`${name}: ${outcome.skipped}`)
      continue
    }
    const { endpoints, detail, teardown, s3Problem } = outcome.resolved
    log(`endpoints from ${endpoints.source} (${((Date.now() - started) / 1000).toFixed(1)} s): ${detail}`)
    // Logical capture's tests need wal_level = logical; on this machine's server we set it (as .ci/run does).
    if (endpoints.source === "local-stack") {
      try {
        ensureLocalLogicalWal()
        dropStaleTestSlots()
      } catch (error) {
        await teardown()
        throw error
      }
    }
    if (endpoints.s3 === null) {
      const text = banner([
        "S3 SUITES SKIPPED: no S3-compatible server available.",
        `  - ${s3Problem ?? "unknown reason"}`,
        "Fix: export AWS_ENDPOINT_URL_S3, LAKE_BUCKET, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "(e.g. from `npm run stack:up`), start a Docker engine, or install java 17+ (and maven once)."
      ])
      process.stderr.write(text)
      if (isCi()) {
        await teardown()
        throw new Error("CI is set and the integration suite has no S3 server (see the banner above)")
      }
    }
    project.provide("endpoints", endpoints satisfies Endpoints)
    return async () => {
      const stopping = Date.now()
      await teardown()
      log(`${endpoints.source} stopped in ${((Date.now() - stopping) / 1000).toFixed(1)} s`)
    }
  }

  const text = banner([
    "INTEGRATION SUITE SKIPPED: no PostgreSQL + Kafka available.",
    "Tried, in order:",
    ...reasons.flatMap((reason) => reason.split("\n").map((line, i) => (i === 0 ? `  - ${line}` : `    ${line}`))),
    "Fix one of them: export PG_URL and KAFKA_BROKERS (e.g. from `npm run stack:up`),",
    "start a Docker engine, or install java 17+ and maven and run PostgreSQL locally."
  ])
  if (isCi()) {
    process.stderr.write(text)
    throw new Error("CI is set and the integration suite has no PostgreSQL + Kafka (see the banner above)")
  }
  process.stderr.write(text)
  project.provide("endpoints", null)
  return async () => undefined
}
