/**
 * A table of `tables:` after a producer restart below an ADD COLUMN (found by the chaos run): the
 * producer, killed between publishing and confirming the slot, publishes that stretch again, and
 * pgoutput's Relation at its start describes the table without the column the consumer has since
 * committed. The consumer must take that marker for an older one, not a drop (which would stop the
 * table), also as a new process that knows the columns only from the Delta table.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { capturedTableCounts } from "../../scripts/chaos/capturedTableCheck.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { runProgram } from "../support/pipelineProcess.ts"
import { closeLogicalPipeline } from "../support/logicalPostgres.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("a table's schema markers published again after a producer restart", (endpoints) => {
  let pipeline: TestPipeline | undefined
  afterAll(async () => {
    if (pipeline === undefined) return
    await closeLogicalPipeline(endpoints, pipeline, { tables: [`${pipeline.roll}_shops`], topics: [`${pipeline.roll}_food_shops_raw`] })
  })

  it("reads the stretch before an ADD COLUMN again without stopping the table", async () => {
    pipeline = await makeTestPipeline(endpoints, "resend", { extra: { CAPTURE_MODE: "logical", KAFKA_PARTITIONS: "3" } })
    const { pool, roll } = pipeline
    const shops = `${roll}_shops`
    await pool.query(`CREATE TABLE "${shops}" (id bigint PRIMARY KEY, name text)`)
    await pool.query(`INSERT INTO "${shops}" SELECT i, 'shop ' || i FROM generate_series(1, 6) i`)
    const configFile = join(pipeline.env["STREAMING_CHECKPOINT_LOCATION"]!, "..", "..", "orders_stream.yml")
    writeFileSync(configFile, `${readFileSync("configs/orders_stream.yml", "utf8")}\ntables:\n  - name: ${shops}\n`)
    const run = (program: "producer" | "consumer", extra: Record<string, string> = {}) =>
      runProgram(program, ["--once", "--config", configFile], { ...pipeline!.env, ...extra })
    const ok = async (program: "producer" | "consumer") => {
      const result = await run(program)
      expect(result.code, result.stderr + result.stdout).toBe(0)
    }
    await ok("producer")
    await ok("consumer")

    // One row before the ADD COLUMN, one after, each on one of the three partitions: the others
    // hold only snapshot rows, below the markers' keys.
    await pool.query(`INSERT INTO "${shops}" VALUES (7, 'before')`)
    await pool.query(`ALTER TABLE "${shops}" ADD COLUMN fee numeric(6,2)`)
    await pool.query(`INSERT INTO "${shops}" VALUES (8, 'after', 2.50)`)
    const killed = await run("producer", { FOP_CRASH_AT: "producer.after-publish" })
    expect(killed.signal).toBe("SIGKILL")
    await ok("consumer")
    const path = join(pipeline.lake, "..", "shops")
    expect(await capturedTableCounts(path)).toEqual({ rows: 8, history: 8 })

    // The slot was not confirmed: the same stretch again, from its Relation without fee.
    await ok("producer")
    await pool.query(`INSERT INTO "${shops}" VALUES (9, 'later', 1.00)`)
    await ok("producer")
    const consumer = await run("consumer")
    expect(consumer.code, consumer.stderr + consumer.stdout).toBe(0)
    expect(consumer.stdout).not.toContain("table stream stopped")
    expect(await capturedTableCounts(path)).toEqual({ rows: 9, history: 9 })
  }, 120_000)
})
