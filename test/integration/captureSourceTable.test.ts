/**
 * Logical capture and the shape of its source table, against the real PostgreSQL and Kafka: values
 * stored out of line (TOAST), replica identity, partitioned tables, a table dropped and created
 * again. The producer runs as its own process; the topic is read back raw.
 */
import { randomBytes } from "node:crypto"
import { readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { ordersTableStatements } from "../../scripts/stack/sql.ts"
import { parseLsn } from "../../src/domain/Change.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { adminQuery, dropSlotQuietly, grantReplication } from "../support/logicalPostgres.ts"
import { runProgram, startProgram } from "../support/pipelineProcess.ts"
import { readAllRaw } from "../support/rawKafka.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

const slotOf = (p: TestPipeline) => `${p.table.toLowerCase().slice(0, 58)}_slot`
const publicationOf = (p: TestPipeline) => `${p.table}_pub`

interface Message {
  readonly key: string
  readonly value: string | null
  readonly op: string
}

const readTopic = async (brokers: string, topic: string): Promise<Array<Message>> =>
  (await readAllRaw(brokers, topic)).map((r) => ({
    key: r.key?.toString("utf8") ?? "",
    value: r.value?.toString("utf8") ?? null,
    op: r.headers["op"] ?? ""
  }))

/** Each order's last message (a key's messages keep their order: one partition per key). */
const lastStates = (messages: ReadonlyArray<Message>) => new Map(messages.map((m) => [m.key, m.value]))

/** Each live order as the published JSON's fields that matter here. */
const liveRows = async (p: TestPipeline) =>
  new Map(
    (await p.pool.query(`SELECT order_id, customer_name, order_status FROM "${p.table}"`)).rows.map((r) => [
      String(r.order_id),
      { customer_name: r.customer_name as string | null, order_status: r.order_status as string | null }
    ])
  )

const expectTopicEqualsTable = async (brokers: string, p: TestPipeline) => {
  const states = lastStates(await readTopic(brokers, p.topic))
  const live = await liveRows(p)
  for (const [key, row] of live) {
    const value = states.get(key)
    expect(value, `order ${key} in the topic`).toBeTruthy()
    const json = JSON.parse(value!) as Record<string, unknown>
    expect({ customer_name: json["customer_name"], order_status: json["order_status"] }, `order ${key}`).toEqual(row)
  }
  for (const [key, value] of states) if (!live.has(key)) expect(value, `order ${key} was deleted`).toBeNull()
}

/** Random hex: pglz cannot shrink it below the TOAST threshold, so it is stored out of line. */
const longName = () => `big-${randomBytes(3_000).toString("hex")}`

const confirmedFlush = async (p: TestPipeline) => {
  const [row] = (await p.pool.query("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", [slotOf(p)])).rows
  return parseLsn(String(row.lsn))!
}

const currentLsn = async (p: TestPipeline) => parseLsn(String((await p.pool.query("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0].lsn))!

const output = (run: { stdout: string; stderr: string }) => (run.stdout + run.stderr).replaceAll('\\"', '"')

describeIntegration("logical capture: the source table", (endpoints) => {
  const open: Array<TestPipeline> = []
  const roles: Array<string> = []
  const pipeline = async () => {
    const p = await makeTestPipeline(endpoints, "cst", { extra: { CAPTURE_MODE: "logical", CAPTURE_HEARTBEAT_SECONDS: "1" } })
    open.push(p)
    return p
  }
  /** A role that may stream and read the table but does not own it, and the producer's URL for it. */
  const foreignRole = async (p: TestPipeline) => {
    const role = `cst_reader_${Date.now().toString(36)}`
    roles.push(role)
    await adminQuery(endpoints, `CREATE ROLE ${role} LOGIN PASSWORD 'pw' REPLICATION`)
    await adminQuery(endpoints, `GRANT SELECT ON "${p.table}" TO ${role}`)
    const url = new URL(endpoints.pgUrl)
    url.username = role
    url.password = "pw"
    return url.toString()
  }
  const publications = async (p: TestPipeline) =>
    Number((await p.pool.query("SELECT count(*)::int AS n FROM pg_publication WHERE pubname = $1", [publicationOf(p)])).rows[0].n)

  beforeAll(async () => {
    await grantReplication(endpoints)
  })
  afterAll(async () => {
    for (const p of open) {
      await dropSlotQuietly(endpoints, slotOf(p))
      await p.pool.query(`DROP PUBLICATION IF EXISTS "${publicationOf(p)}"`).catch(() => undefined)
      await p.close()
    }
    for (const role of roles) {
      await adminQuery(endpoints, `DROP OWNED BY ${role}`).catch(() => undefined)
      await adminQuery(endpoints, `DROP ROLE IF EXISTS ${role}`).catch(() => undefined)
    }
  })

  it("publishes an update of a row over 4 kB whole, the unchanged out-of-line customer_name included; stops at one that arrives without it", async () => {
    const p = await pipeline()
    // A user's table: text columns (values over 2 kB go out of line) and the default identity.
    await p.pool.query(`ALTER TABLE "${p.table}" ALTER COLUMN customer_name TYPE text, REPLICA IDENTITY DEFAULT`)
    const big = longName()
    const [row] = (await p.pool.query(
      `INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status) VALUES ($1, 'r', 'i', 12.5, 'PLACED') RETURNING order_id`,
      [big]
    )).rows
    const id = String(row.order_id)
    const stored = (await p.pool.query(`SELECT pg_column_size(customer_name) AS n FROM "${p.table}"`)).rows[0].n as number
    expect(stored, "stored uncompressed, so out of line").toBeGreaterThan(4_000)
    const first = p.ok(await p.run("producer"))

    await p.pool.query(`UPDATE "${p.table}" SET order_status = 'DELIVERED' WHERE order_id = $1`, [id])
    p.ok(await p.run("producer"))
    const updates = (await readTopic(endpoints.kafkaBrokers, p.topic)).filter((m) => m.op === "update")
    expect(updates).toHaveLength(1)
    expect(JSON.parse(updates[0]!.value!)).toMatchObject({ order_id: Number(id), customer_name: big, order_status: "DELIVERED" })
    expect(output(first)).toContain("replica identity set to FULL")
    expect((await p.pool.query("SELECT relreplident AS r FROM pg_class WHERE relname = $1", [p.table])).rows[0].r).toBe("f")

    // The identity changed behind the producer's back: an update without the value stops capture
    // (every run: the slot sends it again, it was not confirmed past).
    await p.pool.query(`ALTER TABLE "${p.table}" REPLICA IDENTITY DEFAULT`)
    await p.pool.query(`UPDATE "${p.table}" SET order_status = 'CANCELLED' WHERE order_id = $1`, [id])
    const updated = await currentLsn(p)
    for (let i = 0; i < 2; i++) {
      const stopped = await p.run("producer")
      expect(stopped.code).not.toBe(0)
      const text = output(stopped)
      expect(text).toContain(`the update of order ${id} in table public.${p.table} arrived without column customer_name`)
      expect(text).toContain(`ALTER TABLE "${p.table}" REPLICA IDENTITY FULL`)
      expect(text).toContain("npm run producer -- --resnapshot")
      expect(await confirmedFlush(p)).toBeLessThan(updated)
    }
    expect((await readTopic(endpoints.kafkaBrokers, p.topic)).filter((m) => m.op === "update")).toHaveLength(1)
  })

  it("sets REPLICA IDENTITY FULL on an owned table without a primary key before publishing it: the application's UPDATE and DELETE keep working, deletes say their order", async () => {
    const p = await pipeline()
    await p.pool.query(`ALTER TABLE "${p.table}" DROP CONSTRAINT "${p.table}_pkey", REPLICA IDENTITY DEFAULT`)
    await p.pool.query(
      `INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status) SELECT 'c' || g, 'r', 'i', 1, 'PLACED' FROM generate_series(1, 3) g`
    )
    p.ok(await p.run("producer"))
    // Published without a replica identity, these would fail: "cannot update table ... because it
    // does not have a replica identity and publishes updates".
    await p.pool.query(`UPDATE "${p.table}" SET order_status = 'PREPARING' WHERE order_id = 1`)
    await p.pool.query(`DELETE FROM "${p.table}" WHERE order_id = 2`)
    p.ok(await p.run("producer"))
    await expectTopicEqualsTable(endpoints.kafkaBrokers, p)
    expect(lastStates(await readTopic(endpoints.kafkaBrokers, p.topic)).get("2")).toBeNull()
  })

  it("refuses a table it does not own whose identity does not cover order_id, with the ALTER, before creating anything", async () => {
    const p = await pipeline()
    await p.pool.query(`ALTER TABLE "${p.table}" DROP CONSTRAINT "${p.table}_pkey", REPLICA IDENTITY DEFAULT`)
    const url = await foreignRole(p)
    const noKey = await p.run("producer", { PG_URL: url })
    expect(noKey.code).not.toBe(0)
    expect(output(noKey)).toContain(`public.${p.table} has REPLICA IDENTITY DEFAULT and no primary key`)
    expect(output(noKey)).toContain(`ALTER TABLE public.${p.table} REPLICA IDENTITY FULL`)
    expect(await publications(p)).toBe(0)

    await p.pool.query(`CREATE UNIQUE INDEX "${p.table}_name_idx" ON "${p.table}" (customer_name)`)
    await p.pool.query(`ALTER TABLE "${p.table}" ALTER COLUMN customer_name SET NOT NULL, REPLICA IDENTITY USING INDEX "${p.table}_name_idx"`)
    // Published by its owner beforehand: the identity is still checked first.
    await p.pool.query(`CREATE PUBLICATION "${publicationOf(p)}" FOR TABLE "${p.table}"`)
    const byIndex = await p.run("producer", { PG_URL: url })
    expect(byIndex.code).not.toBe(0)
    expect(output(byIndex)).toContain(`public.${p.table} has REPLICA IDENTITY USING INDEX (customer_name), which does not include order_id`)
    expect(output(byIndex)).toContain(`ALTER TABLE public.${p.table} REPLICA IDENTITY FULL`)
    expect((await p.pool.query("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1", [slotOf(p)])).rows[0].n).toBe(0)
  })

  it("captures a partitioned table: inserts, updates and deletes in both partitions, and a row moving between them", async () => {
    const p = await pipeline()
    await p.pool.query(`DROP TABLE "${p.table}"`)
    await p.pool.query(`CREATE TABLE "${p.table}" (
        order_id SERIAL, customer_name VARCHAR(255), restaurant_name VARCHAR(255), item VARCHAR(255), amount NUMERIC(10,2),
        order_status VARCHAR(50), created_at TIMESTAMP NOT NULL, PRIMARY KEY (order_id, created_at)
      ) PARTITION BY RANGE (created_at)`)
    await p.pool.query(`CREATE TABLE "${p.table}_2025" PARTITION OF "${p.table}" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`)
    await p.pool.query(`CREATE TABLE "${p.table}_2026" PARTITION OF "${p.table}" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
    const insert = (name: string, at: string) =>
      p.pool.query(`INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status, created_at) VALUES ($1, 'r', 'i', 3.5, 'PLACED', $2)`, [name, at])
    await insert("snap25", "2025-06-01 10:00:00")
    await insert("snap26", "2026-06-01 10:00:00")
    const first = p.ok(await p.run("producer"))
    expect(p.annotation(first, "snapshot published")?.["rows"]).toBe(2)
    for (const leaf of ["2025", "2026"]) {
      expect((await p.pool.query("SELECT relreplident AS r FROM pg_class WHERE relname = $1", [`${p.table}_${leaf}`])).rows[0].r).toBe("f")
    }

    await insert("new25", "2025-07-01 10:00:00") // order 3
    await insert("new26", "2026-07-01 10:00:00") // order 4
    await p.pool.query(`UPDATE "${p.table}" SET order_status = 'DELIVERED' WHERE order_id IN (1, 2)`)
    await p.pool.query(`DELETE FROM "${p.table}" WHERE order_id = 4`)
    await p.pool.query(`UPDATE "${p.table}" SET created_at = '2026-02-01 10:00:00', order_status = 'MOVED' WHERE order_id = 3`)
    const second = p.ok(await p.run("producer"))
    expect(p.annotation(second, "caught up")?.["published"]).toBeGreaterThanOrEqual(6)
    await expectTopicEqualsTable(endpoints.kafkaBrokers, p)
    const states = lastStates(await readTopic(endpoints.kafkaBrokers, p.topic))
    expect(JSON.parse(states.get("3")!)).toMatchObject({ order_status: "MOVED", created_at: "2026-02-01T10:00:00Z" })
    expect(states.get("4")).toBeNull()
  })

  it("stops when the table is dropped and created again while streaming, without confirming the slot past it; --resnapshot is the way out", async () => {
    const p = await pipeline()
    await p.pool.query(
      `INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status) SELECT 'c' || g, 'r', 'i', 1, 'PLACED' FROM generate_series(1, 3) g`
    )
    const producer = startProgram("producer", p.env)
    let code: number | null
    let dropped: bigint
    try {
      await producer.waitForLog((l) => l["message"] === "streaming changes", 60_000)
      await p.pool.query(`UPDATE "${p.table}" SET order_status = 'PREPARING' WHERE order_id = 1`)
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      await p.pool.query(`DROP TABLE "${p.table}"`)
      dropped = await currentLsn(p)
      // The table alone: the DDL's shared notify function, replaced at once by a parallel test, fails with "tuple concurrently updated".
      await p.pool.query(ordersTableStatements(p.table)[0]!)
      await p.pool.query(
        `INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status) SELECT 'n' || g, 'r', 'i', 2, 'PLACED' FROM generate_series(1, 5) g`
      )
      const failure = await producer.waitForLog((l) => JSON.stringify(l).includes("table-replaced"), 20_000)
      expect(JSON.stringify(failure).replaceAll('\\"', '"')).toContain(`table public.${p.table} was dropped`)
    } finally {
      code = await producer.stop("SIGTERM")
    }
    expect(code).not.toBe(0)
    expect(await confirmedFlush(p)).toBeLessThan(dropped!)

    // Restarted: refused until the new table is published, then until it is re-read from a new snapshot.
    const unpublished = await p.run("producer")
    expect(unpublished.code).not.toBe(0)
    expect(output(unpublished)).toContain(`ALTER PUBLICATION "${publicationOf(p)}" ADD TABLE "${p.table}"`)
    await p.pool.query(`ALTER PUBLICATION "${publicationOf(p)}" ADD TABLE "${p.table}"`)
    const stale = await p.run("producer")
    expect(stale.code).not.toBe(0)
    expect(output(stale)).toContain("was dropped and created again")
    expect(output(stale)).toContain("npm run producer -- --resnapshot")
    const again = p.ok(await runProgram("producer", ["--once", "--resnapshot"], p.env))
    expect(p.annotation(again, "snapshot published")?.["rows"]).toBe(5)
    await expectTopicEqualsTable(endpoints.kafkaBrokers, p)
  })
  it("stops at a change of the old table arriving under the name of a recreated one (a state file written before it kept the oid)", async () => {
    const p = await pipeline()
    await p.pool.query(`INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status) VALUES ('first', 'r', 'i', 1, 'PLACED')`)
    p.ok(await p.run("producer"))
    // A state file of an earlier version: no table_oid, so only the stream can tell.
    const statePath = join(dirname(p.env["STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION"]!), `${slotOf(p)}.logical.json`)
    const { table_oid: _oid, ...older } = JSON.parse(readFileSync(statePath, "utf8")) as Record<string, unknown>
    writeFileSync(statePath, JSON.stringify(older))
    await p.pool.query(`INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status) VALUES ('old', 'r', 'i', 1, 'PLACED')`)
    await p.pool.query(`DROP TABLE "${p.table}"`)
    await p.pool.query(ordersTableStatements(p.table)[0]!)
    await p.pool.query(`ALTER PUBLICATION "${publicationOf(p)}" ADD TABLE "${p.table}"`)
    await p.pool.query(`INSERT INTO "${p.table}" (customer_name, restaurant_name, item, amount, order_status) VALUES ('new', 'r', 'i', 1, 'PLACED')`)
    // Every run: the old table's insert is sent again, it was not confirmed past.
    for (let i = 0; i < 2; i++) {
      const run = await p.run("producer")
      expect(run.code).not.toBe(0)
      expect(output(run)).toMatch(new RegExp(`table public\\.${p.table} was dropped and created again \\(oid \\d+ at start, a change of oid \\d+ arrived\\)`))
      expect(output(run)).toContain("npm run producer -- --resnapshot")
    }
    expect((await readTopic(endpoints.kafkaBrokers, p.topic)).map((m) => m.op)).toEqual(["snapshot"])
  })
})
