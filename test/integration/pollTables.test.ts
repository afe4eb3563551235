/**
 * Tables beside the orders table under capture.mode poll: each polled by its key, taken from the
 * key's sequence, into its own topic and Delta table, with the real PostgreSQL and broker and the
 * programs as processes, read back with DuckDB (which returns every value as text here). Covers the types, an ADD COLUMN between runs, no
 * row twice, a key whose transaction commits late (never passed, and never waited for by
 * transactions that do not touch the sequence), and a table poll mode cannot capture safely.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { Effect } from "effect"
import { afterAll, expect, it } from "vitest"
import { openLake, runQuery } from "../../src/analytics/lakeQuery.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { deleteTopics } from "../support/kafka.ts"
import { runProgram, startProgram } from "../support/pipelineProcess.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("capture.mode poll: tables beside the orders table", (endpoints) => {
  const pipelines: Array<TestPipeline> = []
  const cleanup: Array<() => Promise<unknown>> = []

  afterAll(async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined)
    for (const pipeline of pipelines) await pipeline.close()
  })

  const setUp = async (prefix: string, tables: ReadonlyArray<string>) => {
    const pipeline = await makeTestPipeline(endpoints, prefix)
    pipelines.push(pipeline)
    const names = tables.map((name) => `${pipeline.roll}_${name}`)
    cleanup.push(
      () => pipeline.pool.query(`DROP TABLE IF EXISTS ${names.map((n) => `"${n}"`).join(", ")}`),
      () => deleteTopics(endpoints.kafkaBrokers, tables.map((name) => `${pipeline.roll}_food_${name}_raw`))
    )
    return { pipeline, names, env: { ...pipeline.env, TABLES: names.join(",") }, q: (sql: string, values?: Array<unknown>) => pipeline.pool.query(sql, values) }
  }

  const readLake = <A>(pipeline: TestPipeline, tables: ReadonlyArray<string>, queries: (run: (sql: string) => Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, unknown>) => Effect.Effect<A, unknown>) => {
    const root = join(pipeline.lake, "..")
    const described = tables.map((name) => ({ name, path: join(root, name), changesPath: join(root, `${name}_changes`) }))
    return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const db = yield* openLake(pipeline.lake, {}, undefined, described)
      return yield* queries((sql) => Effect.map(runQuery(db, sql), (result) => result.rows))
    })))
  }

  const ok = async (program: "producer" | "consumer", env: Record<string, string>) => {
    const result = await runProgram(program, ["--once"], env)
    expect(result.code, result.stderr + result.stdout).toBe(0)
    return result
  }

  it("writes each table's rows with their types, follows an ADD COLUMN, and publishes no row twice", async () => {
    const { pipeline, names: [restaurants, items], env, q } = await setUp("polltab", ["restaurants", "items"])
    await q(`CREATE TABLE "${restaurants}" (restaurant_id bigserial PRIMARY KEY, name text NOT NULL, rating numeric(4,2),
      open boolean, opened_at timestamptz, tags text[], meta jsonb, logo bytea, score double precision)`)
    await q(`INSERT INTO "${restaurants}" (name, rating, open, opened_at, tags, meta, logo, score)
      SELECT 'Café ' || i || ' 東京', CASE WHEN i % 5 = 0 THEN NULL ELSE i * 0.25 END, i % 2 = 0,
        timestamptz '2025-03-01 10:00:00.123456+00' + i * interval '9 hours', ARRAY['a,b', NULL, 'ü' || i],
        jsonb_build_object('n', i), decode(lpad(to_hex(i), 4, '0'), 'hex'), i / 3.0
      FROM generate_series(1, 40) i`)
    await q(`CREATE TABLE "${items}" (id serial PRIMARY KEY, item text, qty smallint)`)
    await q(`INSERT INTO "${items}" (item, qty) SELECT 'item ' || i, i FROM generate_series(1, 25) i`)
    await q(`INSERT INTO "${pipeline.table}" (customer_name, restaurant_name, item, amount, order_status)
      SELECT 'c' || i, 'r', 'x', i, 'PLACED' FROM generate_series(1, 12) i`)

    await ok("producer", env)
    await ok("consumer", env)
    await q(`ALTER TABLE "${restaurants}" ADD COLUMN fee numeric(6,2)`)
    await q(`INSERT INTO "${restaurants}" (name, fee) SELECT 'New ' || i, i + 0.99 FROM generate_series(1, 5) i`)
    await q(`INSERT INTO "${items}" (item, qty) VALUES ('late', 99)`)
    await ok("producer", env)
    await ok("consumer", env)
    // Nothing new: a second pair of runs changes nothing.
    await ok("producer", env)
    await ok("consumer", env)

    const pgRows = (await q(`SELECT restaurant_id::text AS id, name, rating::text AS rating, open::text AS open,
        to_char(opened_at AT TIME ZONE 'utc', 'YYYY-MM-DD HH24:MI:SS.US') AS opened_at, array_to_string(tags, '|', 'null') AS tags,
        meta::text AS meta, encode(logo, 'hex') AS logo, fee::text AS fee
      FROM "${restaurants}" ORDER BY restaurant_id`)).rows
    const read = await readLake(pipeline, ["restaurants", "items"], (sql) =>
      Effect.all({
        rows: sql(`SELECT restaurant_id::VARCHAR, name, rating::VARCHAR, open::VARCHAR, strftime(opened_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f'),
            array_to_string(list_transform(tags, t -> coalesce(t, 'null')), '|'), meta, hex(logo), fee::VARCHAR
          FROM restaurants ORDER BY restaurant_id`),
        types: sql(`SELECT typeof(restaurant_id), typeof(rating), typeof(opened_at), typeof(tags), typeof(logo), typeof(fee) FROM restaurants LIMIT 1`),
        history: sql(`SELECT _change_op, count(*)::INT, count(DISTINCT restaurant_id)::INT FROM restaurants_changes GROUP BY 1`),
        items: sql(`SELECT count(*)::INT, max(id)::INT, sum(qty)::INT FROM items`),
        orders: sql(`SELECT count(*)::INT FROM orders`)
      }))
    expect(read.rows.length).toBe(45)
    for (const [i, row] of read.rows.entries()) {
      const expected = pgRows[i]!
      expect(row).toEqual([expected.id, expected.name, expected.rating, expected.open, expected.opened_at, expected.tags, expected.meta,
        expected.logo === null ? null : String(expected.logo).toUpperCase(), expected.fee])
    }
    // The rows before the ADD COLUMN read it as null, as those rows hold it in PostgreSQL.
    expect(read.rows.filter((row) => row[8] === null).length).toBe(40)
    expect(read.types[0]).toEqual(["BIGINT", "DECIMAL(4,2)", "TIMESTAMP WITH TIME ZONE", "VARCHAR[]", "BLOB", "DECIMAL(6,2)"])
    expect(read.history).toEqual([["insert", "45", "45"]])
    expect(read.items[0]).toEqual(["26", "26", String(25 * 26 / 2 + 99)])
    expect(read.orders[0]).toEqual(["12"])
  })

  it("never passes a key whose transaction commits late, and is not held back by transactions that take none", async () => {
    const { pipeline, names: [late], env, q } = await setUp("polllate", ["late"])
    await q(`CREATE TABLE "${late}" (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, note text)`)
    await q(`INSERT INTO "${late}" (note) SELECT 'early ' || i FROM generate_series(1, 10) i`)
    const stateFile = join(pipeline.env["STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION"]!, "..", `public.${late}.poll.json`)
    const lastKey = () => {
      try {
        return (JSON.parse(readFileSync(stateFile, "utf8")) as { last_key: string | null }).last_key
      } catch {
        return undefined
      }
    }
    const waitFor = async (what: string, check: () => boolean, timeoutMs = 30_000) => {
      const until = Date.now() + timeoutMs
      while (!check()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what} (last_key ${lastKey()})`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    // A transaction that runs all along without touching the sequence.
    const bystander = new pg.Client({ connectionString: endpoints.pgUrl })
    const holder = new pg.Client({ connectionString: endpoints.pgUrl })
    await bystander.connect()
    await holder.connect()
    cleanup.push(() => bystander.end(), () => holder.end())
    await bystander.query("BEGIN")
    await bystander.query(`SELECT count(*) FROM "${late}"`)

    const producer = startProgram("producer", { ...env, STREAMING_BATCH_INTERVAL: "0.2" })
    cleanup.push(() => producer.stop())
    await waitFor("the first ten rows", () => lastKey() === "10")

    // Key 11 is taken and not committed; 12..20 commit meanwhile.
    await holder.query("BEGIN")
    const [{ id }] = (await holder.query(`INSERT INTO "${late}" (note) VALUES ('late') RETURNING id::text AS id`)).rows as Array<{ id: string }>
    expect(id).toBe("11")
    await q(`INSERT INTO "${late}" (note) SELECT 'after ' || i FROM generate_series(12, 20) i`)
    // Several cycles (0.2 s apart, each waiting up to 1 s for the sequence's holders): key 11 holds them at 10.
    await new Promise((resolve) => setTimeout(resolve, 4_000))
    expect(lastKey()).toBe("10")
    await holder.query("COMMIT")
    await waitFor("all twenty rows", () => lastKey() === "20")
    // Still open: it never held anything back.
    await bystander.query("COMMIT")
    expect(await producer.stop("SIGTERM")).toBe(0)

    await ok("consumer", env)
    const read = await readLake(pipeline, ["late"], (sql) =>
      Effect.all({
        ids: sql(`SELECT string_agg(id::VARCHAR, ',' ORDER BY id), count(*)::INT FROM late`),
        history: sql(`SELECT count(*)::INT, count(DISTINCT id)::INT FROM late_changes`)
      }))
    expect(read.ids[0]).toEqual([Array.from({ length: 20 }, (_, i) => i + 1).join(","), "20"])
    expect(read.history[0]).toEqual(["20", "20"])
  })

  it("refuses a table whose key poll mode cannot follow, naming why and the way out; the other tables go on", async () => {
    const { pipeline, names: [codes, cached, fine], env, q } = await setUp("pollbad", ["codes", "cached", "fine"])
    await q(`CREATE TABLE "${codes}" (code text PRIMARY KEY, label text)`)
    await q(`CREATE TABLE "${cached}" (id serial PRIMARY KEY, label text)`)
    await q(`ALTER SEQUENCE "${cached}_id_seq" CACHE 20`)
    await q(`CREATE TABLE "${fine}" (id serial PRIMARY KEY, label text)`)
    await q(`INSERT INTO "${codes}" VALUES ('a', 'x')`)
    await q(`INSERT INTO "${fine}" (label) SELECT 'l' || i FROM generate_series(1, 7) i`)
    const producer = await runProgram("producer", ["--once"], env)
    expect(producer.code).not.toBe(0)
    const output = producer.stdout + producer.stderr
    expect(output).toContain(`public.${codes} cannot be captured by capture.mode poll: its key column code is text`)
    expect(output).toContain(`public.${cached} cannot be captured by capture.mode poll: its sequence public.${cached}_id_seq has CACHE 20`)
    expect(output).toContain(`ALTER SEQUENCE public.${cached}_id_seq CACHE 1`)
    expect(output).toContain(`capture stopped for public.${codes}, public.${cached}`)
    await ok("consumer", env)
    const read = await readLake(pipeline, ["fine"], (sql) => sql(`SELECT count(*)::INT FROM fine`))
    expect(read[0]).toEqual(["7"])
  })
})
