/**
 * The chaos run's check of its second table (scripts/chaos/capturedTableCheck.ts) against a real
 * pipeline: restaurants (unicode, numeric, timestamptz partitions with a null one, jsonb, text[]
 * with commas, quotes and NULLs) captured by the producer and consumer (`--once`, `tables:` from a
 * config file), then read back by DuckDB: it agrees with PostgreSQL and the ledger, and it sees a
 * value changed behind the pipeline's back (also in a column added later), a row gone, and a change
 * the ledger holds but the history lacks.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { capturedTableCounts, checkCapturedTable } from "../../scripts/chaos/capturedTableCheck.ts"
import { ChangeLedger } from "../../scripts/chaos/changeLedger.ts"
import { seededRandom } from "../../scripts/chaos/random.ts"
import { createRestaurantsTable, RestaurantChanges, restaurantColumns, restaurantsTableOf, restaurantsTablesYaml } from "../../scripts/chaos/restaurants.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { runProgram } from "../support/pipelineProcess.ts"
import { closeLogicalPipeline } from "../support/logicalPostgres.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("the chaos run's check of its second table", (endpoints) => {
  let pipeline: TestPipeline | undefined
  afterAll(async () => {
    if (pipeline === undefined) return
    await closeLogicalPipeline(endpoints, pipeline, { tables: [restaurantsTableOf(pipeline.roll)], topics: [`${pipeline.roll}_food_restaurants_raw`] })
  })

  it("agrees with a captured table, and sees a changed value, a removed row and a change the history lacks", async () => {
    pipeline = await makeTestPipeline(endpoints, "chaoscheck", { extra: { CAPTURE_MODE: "logical", KAFKA_PARTITIONS: "1" } })
    const { pool, roll } = pipeline
    const table = restaurantsTableOf(roll)
    await createRestaurantsTable(pool, table)
    const ledger = new ChangeLedger()
    await new RestaurantChanges(table, ledger, seededRandom(7)).insertSnapshot(pool, 40)

    const configFile = join(pipeline.env["STREAMING_CHECKPOINT_LOCATION"]!, "..", "..", "orders_stream.yml")
    writeFileSync(configFile, `${readFileSync("configs/orders_stream.yml", "utf8")}\n${restaurantsTablesYaml(table)}`)
    for (const program of ["producer", "consumer"] as const) {
      const result = await runProgram(program, ["--once", "--config", configFile], pipeline.env)
      expect(result.code, result.stderr + result.stdout).toBe(0)
    }

    const path = join(pipeline.lake, "..", "restaurants")
    const target = { table, lakeName: "restaurants", path, ordersPath: pipeline.lake, key: "restaurant_id", columns: restaurantColumns, partition: { column: "opened_at", value: "date" } }
    const check = () => checkCapturedTable(pool, target, ledger)
    expect(await capturedTableCounts(path)).toEqual({ rows: 40, history: 40 })
    const clean = await check()
    expect(clean).toMatchObject({
      sourceRows: 40, lakeRows: 40, missing: 0, duplicated: 0, unexpected: 0, mismatched: 0, wrongPartition: 0,
      history: { rows: 40, byOp: { snapshot: 40 }, repeated: 0, countMismatches: 0, unknownKeys: 0, absentKeys: 0, lastStateMismatches: 0 }
    })
    // The workload's values are there to compare: several partitions, unicode, arrays.
    const { rows: [shape] } = await pool.query<{ days: number; arrays: number; unicode: number }>(`SELECT count(DISTINCT (opened_at AT TIME ZONE 'UTC')::date)::int AS days,
      count(*) FILTER (WHERE cardinality(tags) > 0)::int AS arrays, count(*) FILTER (WHERE name ~ '[^ -~]')::int AS unicode FROM "${table}"`)
    expect(shape!.days).toBeGreaterThan(3)
    expect(shape!.arrays).toBeGreaterThan(10)
    expect(shape!.unicode).toBeGreaterThan(5)

    // Behind the pipeline's back: a column added (NULL on both sides: no difference yet), then set;
    // another value changed; a row deleted; a change in the ledger that never happened.
    const { rows: ids } = await pool.query<{ id: string }>(`SELECT restaurant_id::text AS id FROM "${table}" ORDER BY restaurant_id LIMIT 4`)
    await pool.query(`ALTER TABLE "${table}" ADD COLUMN delivery_fee numeric(6,2)`)
    expect((await check()).mismatched).toBe(0)
    await pool.query(`UPDATE "${table}" SET delivery_fee = 1.50 WHERE restaurant_id = $1`, [ids[0]!.id])
    await pool.query(`UPDATE "${table}" SET tags = ARRAY['x,y', NULL] WHERE restaurant_id = $1`, [ids[1]!.id])
    await pool.query(`DELETE FROM "${table}" WHERE restaurant_id = $1`, [ids[2]!.id])
    ledger.record(Number(ids[3]!.id), "update")
    const tampered = await check()
    expect(tampered).toMatchObject({
      sourceRows: 39, lakeRows: 40, missing: 0, unexpected: 1, mismatched: 2,
      history: { countMismatches: 1, lastStateMismatches: 3, byOp: { snapshot: 40 }, expectedByOp: { snapshot: 40, update: 1 } }
    })
    expect(tampered.samples.unexpected).toEqual([ids[2]!.id])
    expect(tampered.samples.mismatched.map((m) => m.key).sort()).toEqual([ids[0]!.id, ids[1]!.id].sort())
  }, 120_000)
})
