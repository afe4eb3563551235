/**
 * The `tables` scenario's load generator, its own process (as generator.ts, so that its work never
 * delays the benchmark's clock): a fixed total rate of changes, spread evenly over the tables it is
 * given (the orders table and/or the side tables of sideTables.ts), half inserts and half updates
 * of rows inserted at least `updateAfterMs` before (an order's next status, a restaurant's new
 * rating: as in generator.ts, rows change a while after they were written, not in the next
 * transaction). Each tick is one transaction over every table; it reports the
 * transaction's xid (32 bits, as pgoutput carries it and the change messages' `xid` header), the
 * time its COMMIT returned and how many rows of each table it inserted and updated. One transaction
 * per tick whatever the spread, so the baseline (orders alone) and the spread differ only in where
 * the changes go.
 *
 *   stdin : {"run":{"label":"...","rate":600,"durationMs":30000,"tickMs":20,"tables":["orders","restaurants"]}} | {"quit":true}
 *   stdout: {"gen":"ready"} | {"gen":"commit",...} | {"gen":"done",...} | {"gen":"error",...}
 *
 * Environment: BENCH_PG_URL, BENCH_TABLE (the orders table; the side tables are named after it).
 */
import { createInterface } from "node:readline"
import pg from "pg"
import { insertNowSql } from "./database.ts"
import { insertSideRowsSql, maxSideRowSql, type SideTable, sideTableName, updateSideRowsSql } from "./sideTables.ts"

export type GeneratedTable = "orders" | SideTable

interface RunCommand {
  readonly label: string
  readonly rate: number
  readonly durationMs: number
  readonly tickMs: number
  readonly tables: ReadonlyArray<GeneratedTable>
}

const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const updateAfterMs = 1_000

const main = async () => {
  const client = new pg.Client({ connectionString: process.env["BENCH_PG_URL"], application_name: "food-orders-bench-generator" })
  client.on("error", (error) => {
    emit({ gen: "error", error: `connection lost: ${error.message}` })
    process.exit(1)
  })
  await client.connect()
  const orders = process.env["BENCH_TABLE"]!
  const ordersUpdate = `UPDATE "${orders}" SET order_status = 'PREPARING' WHERE order_id = ANY($1::int[])`
  // Rows inserted and not yet updated, per table, with when: each is updated once, oldest first.
  const updatable = new Map<GeneratedTable, Array<{ id: number; at: number }>>()
  const nextRow = new Map<SideTable, number>()

  const insert = async (table: GeneratedTable, n: number): Promise<Array<number>> => {
    if (table === "orders") {
      const row = (await client.query<{ first: number; last: number }>(insertNowSql(orders), [n])).rows[0]!
      return Array.from({ length: row.last - row.first + 1 }, (_, i) => row.first + i)
    }
    const first = nextRow.get(table)!
    await client.query(insertSideRowsSql(sideTableName(orders, table), table), [first, first + n - 1])
    nextRow.set(table, first + n)
    return Array.from({ length: n }, (_, i) => first + i)
  }

  const update = async (table: GeneratedTable, ids: ReadonlyArray<number>): Promise<number> => {
    const sql = table === "orders" ? ordersUpdate : updateSideRowsSql(sideTableName(orders, table), table)
    return (await client.query(sql, [ids])).rowCount ?? 0
  }

  const runStep = async (command: RunCommand) => {
    for (const table of command.tables) {
      if (table === "orders" || nextRow.has(table)) continue
      const row = (await client.query<{ g: string }>(maxSideRowSql(sideTableName(orders, table), table))).rows[0]!
      nextRow.set(table, Number(row.g) + 1)
    }
    const share = command.rate / command.tables.length
    const done = new Map(command.tables.map((t) => [t, { inserted: 0, updated: 0 }]))
    const started = Date.now()
    let transactions = 0
    for (let tick = 1; ; tick++) {
      const dueAt = started + tick * command.tickMs
      // By the clock, not the tick count: a slow tick (three tables: more statements per
      // transaction) makes the next transaction bigger, and the total rate holds.
      const elapsed = Math.min(Date.now() - started, command.durationMs)
      const changes: Record<string, { inserted: number; updated: number }> = {}
      const before = Date.now()
      await client.query("BEGIN")
      for (const table of command.tables) {
        const counts = done.get(table)!
        // Catch up to the schedule rather than drift when a tick is slow.
        const due = Math.round((share * elapsed) / 1000) - counts.inserted - counts.updated
        if (due <= 0) continue
        const queue = updatable.get(table) ?? []
        let ready = 0
        while (ready < queue.length && queue[ready]!.at <= before - updateAfterMs) ready++
        const updates = queue.splice(0, Math.min(Math.floor(due / 2), ready)).map((u) => u.id)
        const inserted = await insert(table, due - updates.length)
        const updated = updates.length === 0 ? 0 : await update(table, updates)
        for (const id of inserted) queue.push({ id, at: before })
        updatable.set(table, queue)
        counts.inserted += inserted.length
        counts.updated += updated
        changes[table] = { inserted: inserted.length, updated }
      }
      const xid = (await client.query<{ xid: string }>("SELECT (txid_current() % 4294967296)::bigint::text AS xid")).rows[0]!.xid
      await client.query("COMMIT")
      const t = Date.now()
      transactions += 1
      if (Object.keys(changes).length > 0) emit({ gen: "commit", label: command.label, t, sentAt: before, xid: Number(xid), changes })
      if (elapsed >= command.durationMs) break
      const wait = Math.min(dueAt - Date.now(), started + command.durationMs - Date.now())
      if (wait > 0) await sleep(wait)
    }
    const ms = Date.now() - started
    const total = [...done.values()].reduce((sum, c) => sum + c.inserted + c.updated, 0)
    emit({ gen: "done", label: command.label, ms, transactions, changes: Object.fromEntries(done), achievedRate: Math.round((total * 1000) / ms) })
  }

  emit({ gen: "ready" })
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (line.trim() === "") continue
    const command = JSON.parse(line) as { run?: RunCommand; quit?: boolean }
    if (command.quit === true) break
    if (command.run !== undefined) {
      try {
        await runStep(command.run)
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined)
        emit({ gen: "error", label: command.run.label, error: error instanceof Error ? error.message : String(error) })
      }
    }
  }
  await client.end()
}

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
main().catch((error) => {
  emit({ gen: "error", error: error instanceof Error ? error.message : String(error) })
  process.exit(1)
})
