/**
 * Tables captured beside the orders table (`tables:`), end to end on the capture side: the real
 * PostgreSQL and broker, the producer as a process (`--once`). One slot and one publication carry
 * every table; each table's changes go to its own topic, keyed by its key columns, each partition
 * opening with a schema marker; an ADD COLUMN reaches every partition as a marker before the first
 * row that has the column; a delete is a tombstone, a TRUNCATE a marker per partition; a table added
 * to the configuration later gets its own snapshot, and the others are not read again.
 */
import { afterAll, expect, it } from "vitest"
import { compareChangeKeys, parseChangeKey } from "../../src/domain/Change.ts"
import { partitionOfKey } from "../../src/domain/orderPartition.ts"
import type { SchemaMessage } from "../../src/domain/TableChange.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { deleteTopics } from "../support/kafka.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { type RawRecord, readAllRaw } from "../support/rawKafka.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

describeIntegration("capture of several tables", (endpoints) => {
  const pipelines: Array<TestPipeline> = []
  const topics: Array<string> = []

  afterAll(async () => {
    for (const pipeline of pipelines) {
      const slot = `${pipeline.table.toLowerCase()}_slot`
      await pipeline.pool.query("SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", [slot]).catch(() => undefined)
      await pipeline.pool.query(`DROP PUBLICATION IF EXISTS "${pipeline.table}_pub"`).catch(() => undefined)
      await pipeline.pool.query(`DROP TABLE IF EXISTS "${pipeline.roll}_restaurants", "${pipeline.roll}_menu"`).catch(() => undefined)
      await pipeline.pool.query(`DROP TYPE IF EXISTS "${pipeline.roll}_cuisine"`).catch(() => undefined)
      await pipeline.close()
    }
    await deleteTopics(endpoints.kafkaBrokers, topics).catch(() => undefined)
  })

  const text = (buffer: Buffer | null) => (buffer === null ? null : buffer.toString("utf8"))
  const ops = (records: ReadonlyArray<RawRecord>) => records.map((r) => r.headers["op"])

  /** Each partition's records in offset order: change keys of row changes only ever grow. */
  const byPartition = (records: ReadonlyArray<RawRecord>) => {
    const out = new Map<number, Array<RawRecord>>()
    for (const record of records) out.set(record.partition, [...(out.get(record.partition) ?? []), record])
    for (const list of out.values()) {
      list.sort((a, b) => Number(a.offset) - Number(b.offset))
      const keys = list.filter((r) => r.headers["op"] !== "schema").map((r) => parseChangeKey(r.headers["change_key"])!)
      for (let i = 1; i < keys.length; i++) expect(compareChangeKeys(keys[i - 1]!, keys[i]!)).toBeLessThan(0)
    }
    return out
  }

  it("publishes each table to its topic through the one slot, follows ADD COLUMN, and snapshots a table added later alone", async () => {
    const pipeline = await makeTestPipeline(endpoints, "multi", { extra: { CAPTURE_MODE: "logical", KAFKA_PARTITIONS: "3" } })
    pipelines.push(pipeline)
    const { roll } = pipeline
    const q = (sql: string, values?: Array<unknown>) => pipeline.pool.query(sql, values)
    const restaurantsTopic = `${roll}_food_restaurants_raw`
    const menuTopic = `${roll}_food_menu_raw`
    topics.push(restaurantsTopic, menuTopic)
    await q(`CREATE TYPE "${roll}_cuisine" AS ENUM ('thai', 'italian', 'südindisch')`)
    await q(`CREATE TABLE "${roll}_restaurants" (
      restaurant_id bigint PRIMARY KEY, name text NOT NULL, cuisine "${roll}_cuisine", rating numeric(3,1),
      tags text[], opened_at timestamptz, menu jsonb, logo bytea, open boolean, seats smallint)`)
    await q(`INSERT INTO "${roll}_restaurants" SELECT i, 'Restaurant ' || i || ' ☕', (ARRAY['thai','italian','südindisch'])[1 + i % 3]::"${roll}_cuisine",
      (i % 50) / 10.0, ARRAY['a,b', 'c"d', NULL], timestamptz '2025-01-15 12:00:00+05:30' + i * interval '1 hour',
      jsonb_build_object('dishes', i), decode('00ff' || lpad(to_hex(i), 4, '0'), 'hex'), i % 2 = 0, i FROM generate_series(1, 40) i`)
    await q(`INSERT INTO "${roll}_restaurants" (restaurant_id, name) VALUES (9223372036854775807, '')`)
    await q(insertOrdersSql(pipeline.table, 1, 20, "2025-04-01 10:00:00", 60))
    const withRestaurants = { TABLES: `${roll}_restaurants` }

    const first = pipeline.ok(await pipeline.run("producer", withRestaurants))
    expect(first.stdout + first.stderr).toContain("table snapshot published")
    let restaurants = await readAllRaw(endpoints.kafkaBrokers, restaurantsTopic)
    const partitions = byPartition(restaurants)
    expect(partitions.size).toBe(3)
    for (const list of partitions.values()) expect(list[0]!.headers["op"]).toBe("schema")
    const marker = JSON.parse(text(partitions.get(0)![0]!.value)!) as SchemaMessage
    expect(marker).toMatchObject({ table: `public.${roll}_restaurants`, key: ["restaurant_id"] })
    expect(marker.columns.map((c) => [c.name, c.pg_type, c.type, c.nullable])).toEqual([
      ["restaurant_id", "bigint", "long", false],
      ["name", "text", "string", false],
      ["cuisine", `${roll}_cuisine`, "string", true],
      ["rating", "numeric(3,1)", "decimal(3,1)", true],
      ["tags", "text[]", "array<string>", true],
      ["opened_at", "timestamp with time zone", "timestamp", true],
      ["menu", "jsonb", "string", true],
      ["logo", "bytea", "binary", true],
      ["open", "boolean", "boolean", true],
      ["seats", "smallint", "short", true]
    ])
    const snapshot = restaurants.filter((r) => r.headers["op"] === "snapshot")
    expect(snapshot).toHaveLength(41)
    for (const record of snapshot) {
      const key = text(record.key)!
      expect(record.partition).toBe(partitionOfKey(key, 3))
      expect(record.headers["source"]).toBe(`public.${roll}_restaurants`)
    }
    const seven = snapshot.find((r) => text(r.key) === `{"restaurant_id":7}`)!
    expect(text(seven.value)).toBe(
      `{"restaurant_id":7,"name":"Restaurant 7 ☕","cuisine":"italian","rating":0.7,"tags":["a,b","c\\"d",null],` +
        `"opened_at":"2025-01-15T13:30:00Z","menu":"{\\"dishes\\": 7}","logo":"AP8ABw==","open":false,"seats":7}`
    )
    expect(text(snapshot.find((r) => text(r.key) === `{"restaurant_id":9223372036854775807}`)!.value)).toBe(
      `{"restaurant_id":9223372036854775807,"name":"","cuisine":null,"rating":null,"tags":null,"opened_at":null,"menu":null,"logo":null,"open":null,"seats":null}`
    )

    // Streaming: an update, an ADD COLUMN with a default, rows that have it, a key change, a delete, a TRUNCATE.
    await q(`UPDATE "${roll}_restaurants" SET rating = 4.5 WHERE restaurant_id = 7`)
    await q(`ALTER TABLE "${roll}_restaurants" ADD COLUMN delivery_fee numeric(6,2) DEFAULT 2.50`)
    await q(`INSERT INTO "${roll}_restaurants" (restaurant_id, name, delivery_fee) VALUES (100, 'New', 3.99)`)
    await q(`UPDATE "${roll}_restaurants" SET restaurant_id = 101 WHERE restaurant_id = 8`)
    await q(`DELETE FROM "${roll}_restaurants" WHERE restaurant_id = 9`)
    await q(`TRUNCATE "${roll}_restaurants"`)
    pipeline.ok(await pipeline.run("producer", withRestaurants))
    restaurants = await readAllRaw(endpoints.kafkaBrokers, restaurantsTopic)
    const streamed = restaurants.filter((r) => r.headers["op"] !== "snapshot" && Number(r.offset) >= (partitions.get(r.partition)?.length ?? 0))
    const updated = streamed.find((r) => r.headers["op"] === "update" && text(r.key) === `{"restaurant_id":7}`)!
    expect(JSON.parse(text(updated.value)!)["rating"]).toBe(4.5)
    const inserted = streamed.find((r) => r.headers["op"] === "insert")!
    expect(text(inserted.value)).toContain(`"delivery_fee":3.99}`)
    // The new column's marker reached the inserted row's partition before it.
    const before = byPartition(restaurants).get(inserted.partition)!.filter((r) => Number(r.offset) < Number(inserted.offset))
    const lastMarker = JSON.parse(text(before.filter((r) => r.headers["op"] === "schema").at(-1)!.value)!) as SchemaMessage
    expect(lastMarker.columns.at(-1)).toEqual({ name: "delivery_fee", pg_type: "numeric(6,2)", type_oid: 1700, type: "decimal(6,2)", nullable: true })
    expect(ops(streamed.filter((r) => text(r.key) === `{"restaurant_id":8}`))).toEqual(["delete"])
    expect(ops(streamed.filter((r) => text(r.key) === `{"restaurant_id":101}`))).toEqual(["update"])
    const tombstone = streamed.find((r) => text(r.key) === `{"restaurant_id":9}`)!
    expect([tombstone.headers["op"], tombstone.value]).toEqual(["delete", null])
    const truncates = streamed.filter((r) => r.headers["op"] === "truncate")
    expect(truncates.map((r) => [r.partition, r.headers["partitions"], r.key, r.value])).toEqual(
      [0, 1, 2].map((p) => [p, "3", null, null])
    )

    // A table added to the configuration: its own snapshot, keyed above nothing the stream still owes
    // it; the restaurants are not read again, and the orders keep flowing.
    await q(`CREATE TABLE "${roll}_menu" (restaurant_id bigint, dish text, price numeric(8,2) NOT NULL, PRIMARY KEY (restaurant_id, dish))`)
    await q(`INSERT INTO "${roll}_menu" SELECT i % 5, 'dish ' || i, i * 1.25 FROM generate_series(1, 30) i`)
    await q(insertOrdersSql(pipeline.table, 21, 5, "2025-04-01 11:00:00", 60))
    const both = { TABLES: `${roll}_restaurants,${roll}_menu` }
    const added = pipeline.ok(await pipeline.run("producer", both))
    const published = pipeline.annotation(added, "table snapshot published")
    expect(published).toMatchObject({ table: `public.${roll}_menu`, reading: "added", rows: 30 })
    expect((await readAllRaw(endpoints.kafkaBrokers, restaurantsTopic)).filter((r) => r.headers["op"] === "snapshot")).toHaveLength(41)
    const menu = await readAllRaw(endpoints.kafkaBrokers, menuTopic)
    expect(menu.filter((r) => r.headers["op"] === "snapshot").map((r) => text(r.key)).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `{"restaurant_id":${(i + 1) % 5},"dish":"dish ${i + 1}"}`).sort()
    )
    await q(`UPDATE "${roll}_menu" SET price = 99.99 WHERE restaurant_id = 1 AND dish = 'dish 1'`)
    pipeline.ok(await pipeline.run("producer", both))
    const menuUpdate = (await readAllRaw(endpoints.kafkaBrokers, menuTopic)).filter((r) => r.headers["op"] === "update")
    expect(menuUpdate.map((r) => text(r.value))).toEqual([`{"restaurant_id":1,"dish":"dish 1","price":99.99}`])
    const orders = await readAllRaw(endpoints.kafkaBrokers, pipeline.topic)
    expect(new Set(orders.map((r) => text(r.key))).size).toBe(25)
  })
})
