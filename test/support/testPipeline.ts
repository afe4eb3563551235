import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { expect } from "vitest"
import { ordersTableDdl } from "../../scripts/stack/sql.ts"
import type { Endpoints } from "./endpoints.ts"
import { deleteTopics } from "./kafka.ts"
import { uniqueName } from "./names.ts"
import { logLines, pipelineEnv, type ProgramRun, runProgram } from "./pipelineProcess.ts"

export interface TestPipelineOptions {
  /** More environment overrides for the programs (batch sizes, intervals). */
  readonly extra?: Record<string, string>
  /** Where the programs reach PostgreSQL, when not directly (a proxy the test can cut). */
  readonly programPgUrl?: string
}

/**
 * One isolated pipeline: its own table (created), topics, lake and state, a pool for the test's own
 * SQL, and `close()` to drop it all. Tests never share these, so they need no cleanup order.
 */
export const makeTestPipeline = async (endpoints: Endpoints, prefix: string, options: TestPipelineOptions = {}) => {
  const roll = uniqueName(prefix)
  const stateDir = mkdtempSync(join(tmpdir(), `fop-${prefix}-`))
  const env = pipelineEnv({
    pgUrl: options.programPgUrl ?? endpoints.pgUrl,
    kafkaBrokers: endpoints.kafkaBrokers,
    roll,
    stateDir,
    ...(options.extra === undefined ? {} : { extra: options.extra })
  })
  const pool = new pg.Pool({ connectionString: endpoints.pgUrl, max: 3 })
  const table = `${roll}_orders`
  const topic = `${roll}_food_orders_raw`
  const dlq = `${roll}_food_orders_dlq`
  await pool.query(ordersTableDdl(table))
  return {
    roll,
    table,
    topic,
    dlq,
    pool,
    env,
    lake: env["DATALAKE_PATH"]!,
    checkpointFile: join(env["STREAMING_CHECKPOINT_LOCATION"]!, "offsets.json"),
    /** One `--once` run of a program as its own process. */
    run: (program: "producer" | "consumer", more: Record<string, string> = {}) =>
      runProgram(program, ["--once"], { ...env, ...more }),
    ok: (result: ProgramRun) => {
      expect(result.code, result.stderr + result.stdout).toBe(0)
      return result
    },
    /** The annotations of the first log line with this message. */
    annotation: (result: ProgramRun, message: string) =>
      logLines(result).find((l) => l["message"] === message)?.["annotations"] as Record<string, unknown> | undefined,
    close: async () => {
      await pool.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => undefined)
      await pool.end()
      await deleteTopics(endpoints.kafkaBrokers, [topic, dlq]).catch(() => undefined)
      rmSync(stateDir, { recursive: true, force: true })
    }
  }
}

export type TestPipeline = Awaited<ReturnType<typeof makeTestPipeline>>
