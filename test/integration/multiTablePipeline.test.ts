/**
 * Tables captured beside the orders table, end to end: the real PostgreSQL and broker, the producer
 * and consumer as processes (`--once`), read back by Spark + Delta and DuckDB. A table of 22 columns
 * of every mapped type (NULLs, unicode, numeric edges, json, arrays), partitioned by the date of a
 * timestamptz, and an unpartitioned table with a composite key; an ADD COLUMN mid-stream; updates,
 * deletes and a key change. Spark must report the right type for every column and the values
 * PostgreSQL holds, row by row; older rows read the added column as null, as PostgreSQL's do not
 * (the column was added without a default).
 */
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, expect, it } from "vitest"
import { openLake, runQuery } from "../../src/analytics/lakeQuery.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { deleteTopics } from "../support/kafka.ts"
import { logLines, runProgram } from "../support/pipelineProcess.ts"
import { type SparkSession, startSpark } from "../support/spark.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("tables beside the orders table, into Delta tables", (endpoints) => {
  const pipelines: Array<TestPipeline> = []
  const cleanup: Array<() => Promise<unknown>> = []
  let spark: SparkSession | undefined

  afterAll(async () => {
    await spark?.close()
    for (const step of cleanup) await step().catch(() => undefined)
    for (const pipeline of pipelines) await pipeline.close()
  })

  /** Every column as text, the same way on both sides: Spark's CAST to STRING, PostgreSQL's spelling of it. */
  const columns: ReadonlyArray<readonly [name: string, spark: string, pg: string]> = [
    ["restaurant_id", "cast(restaurant_id as string)", "restaurant_id::text"],
    ["name", "name", "name"],
    // char(n) keeps its padding, as PostgreSQL prints it (a cast to text would trim it).
    ["code", "code", "code"],
    ["city", "city", "city"],
    ["seats", "cast(seats as string)", "seats::text"],
    ["stars", "cast(stars as string)", "stars::text"],
    ["rating", "cast(rating as string)", "rating::text"],
    ["exact", "exact", "exact::text"],
    // Java prints a whole float with ".0"; PostgreSQL without.
    ["temperature", "cast(temperature as string)", "CASE WHEN temperature::text ~ '^-?[0-9]+$' THEN temperature::text || '.0' ELSE temperature::text END"],
    ["score", "cast(score as string)", "CASE WHEN score::text ~ '^-?[0-9]+$' THEN score::text || '.0' ELSE score::text END"],
    ["open", "cast(open as string)", "open::text"],
    ["opened_on", "cast(opened_on as string)", "opened_on::text"],
    ["opened_at", "cast(unix_micros(opened_at) as string)", "(extract(epoch from opened_at) * 1000000)::bigint::text"],
    ["last_seen", "cast(unix_micros(last_seen) as string)", "(extract(epoch from last_seen) * 1000000)::bigint::text"],
    ["closes", "closes", "closes::text"],
    ["uid", "uid", "uid::text"],
    ["meta", "meta", "meta::text"],
    ["menu", "menu", "menu::text"],
    ["logo", "base64(logo)", "encode(logo, 'base64')"],
    ["table_sizes", "cast(table_sizes as string)", "'[' || array_to_string(table_sizes, ', ', 'null') || ']'"],
    ["tags", "cast(tags as string)", "'[' || array_to_string(tags, ', ', 'null') || ']'"],
    ["cuisine", "cuisine", "cuisine::text"],
    ["delivery_fee", "cast(delivery_fee as string)", "delivery_fee::text"]
  ]

  const sparkTypes: Record<string, string> = {
    restaurant_id: "bigint", name: "string", code: "string", city: "string", seats: "smallint", stars: "int",
    rating: "decimal(12,3)", exact: "string", temperature: "float", score: "double", open: "boolean", opened_on: "date",
    opened_at: "timestamp", last_seen: "timestamp", closes: "string", uid: "string", meta: "string", menu: "string",
    logo: "binary", table_sizes: "array<int>", tags: "array<string>", cuisine: "string", delivery_fee: "decimal(6,2)", date: "date"
  }

  it("writes each table's current state and history; Spark reads the types and PostgreSQL's values", async () => {
    const pipeline = await makeTestPipeline(endpoints, "tables", { extra: { CAPTURE_MODE: "logical", KAFKA_PARTITIONS: "2" } })
    pipelines.push(pipeline)
    const { roll } = pipeline
    const q = (sql: string) => pipeline.pool.query(sql)
    const restaurants = `${roll}_restaurants`
    const items = `${roll}_order_items`
    cleanup.push(
      () => q(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${pipeline.table.toLowerCase()}_slot'`),
      () => q(`DROP PUBLICATION IF EXISTS "${pipeline.table}_pub"`),
      () => q(`DROP TABLE IF EXISTS "${restaurants}", "${items}"`),
      () => q(`DROP TYPE IF EXISTS "${roll}_cuisine"`),
      () => deleteTopics(endpoints.kafkaBrokers, [`${roll}_food_restaurants_raw`, `${roll}_food_order_items_raw`])
    )
    await q(`CREATE TYPE "${roll}_cuisine" AS ENUM ('thai', 'italian', 'südindisch')`)
    await q(`CREATE TABLE "${restaurants}" (
      restaurant_id bigint PRIMARY KEY, name text NOT NULL, code char(3), city varchar(40), seats smallint, stars integer,
      rating numeric(12,3), exact numeric, temperature real, score double precision, open boolean, opened_on date,
      opened_at timestamptz, last_seen timestamp, closes time, uid uuid, meta json, menu jsonb, logo bytea,
      table_sizes int[], tags text[], cuisine "${roll}_cuisine")`)
    await q(`INSERT INTO "${restaurants}" SELECT i, 'Café ' || i || ' ☕ 東京 🍣', chr(65 + i % 26), 'City ' || (i % 7),
      (i * 7)::smallint, i * 1000, i * 1.125 - 20, (i::numeric * 1234567.890123456789)::text::numeric, (i % 4) * 0.5 - 1,
      i * 0.1 + 0.25, i % 3 = 0, date '2025-01-01' + i, timestamptz '2025-01-15 12:00:00.5+05:30' + i * interval '7 hours',
      timestamp '2024-12-31 23:59:59.999999' - i * interval '1 day', time '08:00' + i * interval '17 minutes',
      md5(i::text)::uuid, ('{"n": ' || i || ', "tags": ["a"]}')::json, jsonb_build_object('dishes', i, 'name', 'Ünïcode'),
      decode(lpad(to_hex(i * 4099), 8, '0'), 'hex'), ARRAY[i, NULL, -i], ARRAY['a,b', 'c"d', NULL, 'x y'],
      (ARRAY['thai','italian','südindisch'])[1 + i % 3]::"${roll}_cuisine"
      FROM generate_series(1, 60) i`)
    await q(`INSERT INTO "${restaurants}" (restaurant_id, name, rating, exact, temperature, score, opened_at) VALUES
      (9223372036854775807, '', 999999999.999, '-0.000000000000000000000000000001', 'NaN', 'Infinity', NULL),
      (-9223372036854775808, 'min', -999999999.999, '0', '-Infinity', '-0', '1970-01-01 00:00:00+00')`)
    await q(`CREATE TABLE "${items}" (order_id bigint, line int, item text NOT NULL, price numeric(10,2), qty int, PRIMARY KEY (order_id, line))`)
    await q(`INSERT INTO "${items}" SELECT i / 3, i % 3, 'item ' || i, i * 2.5, i % 5 FROM generate_series(3, 50) i`)

    const stateDir = mkdtempSync(join(tmpdir(), "fop-tables-config-"))
    cleanup.push(async () => rmSync(stateDir, { recursive: true, force: true }))
    const configFile = join(stateDir, "orders_stream.yml")
    writeFileSync(configFile, `${readFileSync("configs/orders_stream.yml", "utf8")}
tables:
  - name: ${restaurants}
    partition_by: opened_at
  - name: public.${items}
`)
    const run = async (program: "producer" | "consumer") => {
      const result = await runProgram(program, ["--once", "--config", configFile], pipeline.env)
      expect(result.code, result.stderr + result.stdout).toBe(0)
      return result
    }
    await run("producer")
    await run("consumer")

    // Streaming: updates, an ADD COLUMN (no default), rows with it, a delete, a key change.
    await q(`UPDATE "${restaurants}" SET rating = 4.5, tags = ARRAY['ü'] WHERE restaurant_id = 7`)
    await q(`ALTER TABLE "${restaurants}" ADD COLUMN delivery_fee numeric(6,2)`)
    await q(`INSERT INTO "${restaurants}" (restaurant_id, name, delivery_fee, opened_at) VALUES (100, 'New', 3.99, '2025-02-01 10:00:00+00')`)
    await q(`UPDATE "${restaurants}" SET delivery_fee = 1.50 WHERE restaurant_id = 8`)
    await q(`DELETE FROM "${restaurants}" WHERE restaurant_id IN (9, 10)`)
    await q(`UPDATE "${items}" SET line = 7 WHERE order_id = 2 AND line = 0`)
    await q(`DELETE FROM "${items}" WHERE order_id = 3`)
    await run("producer")
    await run("consumer")

    const lake = (name: string) => join(pipeline.env["DATALAKE_PATH"]!, "..", name)
    const pgRows = async () =>
      (await q(`SELECT ${columns.map(([name, , pg]) => `${pg} AS "${name}"`).join(", ")} FROM "${restaurants}" ORDER BY restaurant_id`)).rows
        .map((row) => columns.map(([name]) => row[name] as string | null))

    spark = await startSpark()
    const read = await spark.sql(`SELECT ${columns.map(([name, expr]) => `${expr} AS ${name}`).join(", ")} FROM delta.\`${lake("restaurants")}\` ORDER BY restaurant_id`)
    const expected = await pgRows()
    expect(read.rows.length).toBe(expected.length)
    for (const [i, row] of read.rows.entries()) {
      expect(Object.fromEntries(columns.map(([name], c) => [name, row[c]]))).toEqual(Object.fromEntries(columns.map(([name], c) => [name, expected[i]![c]])))
    }
    const described = await spark.sql(`SELECT * FROM delta.\`${lake("restaurants")}\` LIMIT 1`)
    expect(Object.fromEntries(described.columns.map((c, i) => [c, described.types[i]]))).toEqual(sparkTypes)
    // Partitioned by the UTC date of opened_at; a NULL opened_at is the null partition.
    const partitions = await spark.sql(`SELECT cast(date as string), count(*) FROM delta.\`${lake("restaurants")}\` GROUP BY date ORDER BY date NULLS FIRST`)
    const pgPartitions = (await q(`SELECT (opened_at AT TIME ZONE 'UTC')::date::text AS d, count(*)::int AS n FROM "${restaurants}" GROUP BY 1 ORDER BY 1 NULLS FIRST`)).rows
    expect(partitions.rows.map((r) => [r[0], Number(r[1])])).toEqual(pgPartitions.map((r) => [r.d, r.n]))

    const itemRows = await spark.sql(`SELECT order_id, line, item, cast(price as string), qty FROM delta.\`${lake("order_items")}\` ORDER BY order_id, line`)
    const pgItems = (await q(`SELECT order_id::int, line, item, price::text, qty FROM "${items}" ORDER BY order_id, line`)).rows
    expect(itemRows.rows.map((r) => r.map((v) => (typeof v === "string" ? v : Number(v))))).toEqual(pgItems.map((r) => [r.order_id, r.line, r.item, r.price, r.qty]))

    // The history: every change once, in commit order; the delete carries the row it removed.
    const history = await spark.sql(`SELECT _change_op, count(*) FROM delta.\`${lake("restaurants_changes")}\` GROUP BY _change_op ORDER BY _change_op`)
    expect(history.rows.map((r) => [r[0], Number(r[1])])).toEqual([["delete", 2], ["insert", 1], ["snapshot", 62], ["update", 2]])
    const deleted = await spark.sql(`SELECT name FROM delta.\`${lake("restaurants_changes")}\` WHERE _change_op = 'delete' ORDER BY restaurant_id`)
    expect(deleted.rows.map((r) => r[0])).toEqual(["Café 9 ☕ 東京 🍣", "Café 10 ☕ 東京 🍣"])

    // A second run of each finds nothing new and changes nothing.
    await run("producer")
    await run("consumer")
    const again = await spark.sql(`SELECT count(*) FROM delta.\`${lake("restaurants_changes")}\``)
    expect(Number(again.rows[0]![0])).toBe(67)
  })

  it("stops the one table a change cannot follow, naming the column and the way out; the other tables go on", async () => {
    const pipeline = await makeTestPipeline(endpoints, "tablestop", { extra: { CAPTURE_MODE: "logical", KAFKA_PARTITIONS: "2" } })
    pipelines.push(pipeline)
    const { roll } = pipeline
    const q = (sql: string) => pipeline.pool.query(sql)
    const menu = `${roll}_menu`
    const shops = `${roll}_shops`
    cleanup.push(
      () => q(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${pipeline.table.toLowerCase()}_slot'`),
      () => q(`DROP PUBLICATION IF EXISTS "${pipeline.table}_pub"`),
      () => q(`DROP TABLE IF EXISTS "${menu}", "${shops}"`),
      () => deleteTopics(endpoints.kafkaBrokers, [`${roll}_food_menu_raw`, `${roll}_food_shops_raw`])
    )
    await q(`CREATE TABLE "${menu}" (id int PRIMARY KEY, dish text, price numeric(8,2))`)
    await q(`CREATE TABLE "${shops}" (id int PRIMARY KEY, name text)`)
    await q(`INSERT INTO "${menu}" SELECT i, 'dish ' || i, i FROM generate_series(1, 10) i`)
    await q(`INSERT INTO "${shops}" SELECT i, 'shop ' || i FROM generate_series(1, 5) i`)
    const env = { ...pipeline.env, TABLES: `${menu},${shops}` }
    const run = (program: "producer" | "consumer") => runProgram(program, ["--once"], env)
    expect((await run("producer")).code).toBe(0)
    expect((await run("consumer")).code).toBe(0)

    await q(`INSERT INTO "${menu}" VALUES (11, 'before', 1)`)
    await q(`ALTER TABLE "${menu}" DROP COLUMN price`)
    await q(`INSERT INTO "${menu}" VALUES (12, 'after')`)
    await q(`INSERT INTO "${shops}" SELECT i, 'shop ' || i FROM generate_series(6, 8) i`)
    expect((await run("producer")).code).toBe(0)
    const consumer = await run("consumer")
    expect(consumer.code).not.toBe(0)
    const output = consumer.stdout + consumer.stderr
    expect(output).toContain(`table public.${menu} changed in a way its Delta table cannot follow: column price was dropped (or renamed)`)
    expect(output).toContain(`The way out is a new snapshot into a new table: stop the producer, delete topic ${roll}_food_menu_raw`)

    // The shops went on; the menu holds everything before the DROP, nothing after it.
    const lakeRoot = join(pipeline.env["DATALAKE_PATH"]!, "..")
    const tables = ["menu", "shops"].map((name) => ({ name, path: join(lakeRoot, name), changesPath: join(lakeRoot, `${name}_changes`) }))
    const read = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const db = yield* openLake(pipeline.env["DATALAKE_PATH"]!, {}, undefined, tables)
      const shopCount = yield* runQuery(db, "SELECT count(*) FROM shops")
      const menuIds = yield* runQuery(db, "SELECT string_agg(id::VARCHAR, ',' ORDER BY id), typeof(any_value(price)) FROM menu")
      const history = yield* runQuery(db, "SELECT _change_op, count(*) FROM menu_changes GROUP BY 1 ORDER BY 1")
      return { shops: shopCount.rows[0]![0], menu: menuIds.rows[0], history: history.rows }
    })))
    expect(read.shops).toBe("8")
    expect(read.menu).toEqual([Array.from({ length: 11 }, (_, i) => i + 1).join(","), "DECIMAL(8,2)"])
    expect(read.history).toEqual([["insert", "1"], ["snapshot", "10"]])
    // Run again: it stops at the same place, and takes nothing past it.
    expect((await run("consumer")).code).not.toBe(0)

    // The way out the error names: the menu's topic deleted, its two directories moved away, the menu
    // alone published again from a new snapshot; the shops are not read again.
    const movedAway = mkdtempSync(join(tmpdir(), "fop-menu-before-"))
    cleanup.push(async () => rmSync(movedAway, { recursive: true, force: true }))
    await deleteTopics(endpoints.kafkaBrokers, [`${roll}_food_menu_raw`])
    for (const name of ["menu", "menu_changes"]) renameSync(join(lakeRoot, name), join(movedAway, name))
    const unknown = await runProgram("producer", ["--once", "--resnapshot-table", "nosuch"], env)
    expect(unknown.code).not.toBe(0)
    expect(unknown.stdout + unknown.stderr).toContain(`--resnapshot-table nosuch: not a table of tables: (public.${menu}, public.${shops})`)
    const again = await runProgram("producer", ["--once", "--resnapshot-table", menu], env)
    expect(again.code, again.stdout + again.stderr).toBe(0)
    expect(logLines(again).find((line) => line["message"] === "table snapshot published")?.["annotations"]).toMatchObject({ table: `public.${menu}`, rows: 12 })
    expect(logLines(again).filter((line) => line["message"] === "table snapshot published")).toHaveLength(1)
    expect((await run("consumer")).code).toBe(0)
    const after = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const db = yield* openLake(pipeline.env["DATALAKE_PATH"]!, {}, undefined, tables)
      const menuRows = yield* runQuery(db, "SELECT string_agg(id::VARCHAR || ':' || dish, ',' ORDER BY id) FROM menu")
      const menuColumns = yield* runQuery(db, "SELECT string_agg(column_name, ',') FROM (DESCRIBE SELECT * FROM menu)")
      const history = yield* runQuery(db, "SELECT _change_op, count(*) FROM menu_changes GROUP BY 1 ORDER BY 1")
      const shopHistory = yield* runQuery(db, "SELECT count(*) FROM shops_changes")
      return { menu: menuRows.rows[0]![0], columns: menuColumns.rows[0]![0], history: history.rows, shopHistory: shopHistory.rows[0]![0] }
    })))
    expect(after.menu).toBe([...Array.from({ length: 10 }, (_, i) => `${i + 1}:dish ${i + 1}`), "11:before", "12:after"].join(","))
    expect(after.columns).toBe("id,dish")
    expect(after.history).toEqual([["snapshot", "12"]])
    expect(after.shopHistory).toBe("8")
  })
})
