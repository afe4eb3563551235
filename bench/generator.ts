/**
 * The load generator, run as its own process so that its work never delays the benchmark's clock
 * for lake files. It inserts realistic orders (server-side, see database.ts) at a fixed rate, in a
 * transaction per tick, and reports each commit: the time the COMMIT returned and the order_ids.
 *
 *   stdin : {"run":{"label":"steady-1000","rate":1000,"durationMs":60000,"tickMs":20}} | {"quit":true}
 *   stdout: {"gen":"ready"} | {"gen":"commit",...} | {"gen":"update",...} | {"gen":"done",...} | {"gen":"error",...}
 *
 * With `"updates":true` each order of the step is updated later, the way an order's life goes: 1 s
 * after its INSERT committed its status becomes PREPARING, after 2 s DELIVERED, and every third
 * order (order_id divisible by 3) gets an amount correction (+1.00) after 3 s: 2.33 updates per order.
 * The updates due at a tick run as one UPDATE (one transaction), reported with its xid (32 bits, as
 * pgoutput carries it) and the time its COMMIT returned; the step ends when the last update ran.
 *
 * Environment: BENCH_PG_URL, BENCH_TABLE.
 */
import { createInterface } from "node:readline"
import pg from "pg"
import { insertNowSql } from "./database.ts"

interface RunCommand {
  readonly label: string
  readonly rate: number
  readonly durationMs: number
  readonly tickMs: number
  readonly maxRowsPerStatement?: number
  readonly updates?: boolean
}

/** Seconds after the INSERT's commit of each update of the lifecycle, and which orders get it. */
const lifecycle = [
  { afterMs: 1_000, step: 1, applies: (_id: number) => true },
  { afterMs: 2_000, step: 2, applies: (_id: number) => true },
  { afterMs: 3_000, step: 3, applies: (id: number) => id % 3 === 0 }
] as const

const updateSql = (table: string) => `
WITH u AS (
  UPDATE "${table}" AS o
  SET order_status = CASE v.step WHEN 1 THEN 'PREPARING' WHEN 2 THEN 'DELIVERED' ELSE o.order_status END,
      amount = CASE v.step WHEN 3 THEN o.amount + 1 ELSE o.amount END
  FROM unnest($1::int[], $2::int[]) AS v(id, step)
  WHERE o.order_id = v.id
  RETURNING 1
)
SELECT count(*)::int AS n, (txid_current() % 4294967296)::bigint::text AS xid FROM u`

const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ gen: event["gen"], ...event })}\n`)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const main = async () => {
  const client = new pg.Client({ connectionString: process.env["BENCH_PG_URL"], application_name: "food-orders-bench-generator" })
  // A lost connection (e.g. PostgreSQL restarted under the run) ends the generator with a clear line.
  client.on("error", (error) => {
    emit({ gen: "error", error: `connection lost: ${error.message}` })
    process.exit(1)
  })
  await client.connect()
  const sql = insertNowSql(process.env["BENCH_TABLE"]!)
  // Prepared once: the server plans it once, each tick only binds the count.
  const statement = { name: "bench_insert", text: sql }
  const update = { name: "bench_update", text: updateSql(process.env["BENCH_TABLE"]!) }

  const runStep = async (command: RunCommand) => {
    const started = Date.now()
    const maxRows = command.maxRowsPerStatement ?? 10_000
    let inserted = 0
    let statements = 0
    let insertMs = 0
    let updated = 0
    // Due updates, in commit order of their inserts (so in due order per lifecycle step).
    const lifecycleDue: Array<{ at: number; ids: Array<number>; step: number }> = []
    const runUpdates = async (now: number) => {
      const ids: Array<number> = []
      const steps: Array<number> = []
      while (lifecycleDue.length > 0 && lifecycleDue[0]!.at <= now) {
        const next = lifecycleDue.shift()!
        for (const id of next.ids) {
          ids.push(id)
          steps.push(next.step)
        }
      }
      if (ids.length === 0) return
      const before = Date.now()
      const result = await client.query<{ n: number; xid: string }>({ ...update, values: [ids, steps] })
      const t = Date.now()
      updated += result.rows[0]!.n
      emit({ gen: "update", label: command.label, t, sentAt: before, xid: Number(result.rows[0]!.xid), n: result.rows[0]!.n })
    }
    for (let tick = 1; ; tick++) {
      const dueAt = started + tick * command.tickMs
      const elapsed = Math.min(dueAt - started, command.durationMs)
      // Catch up to the schedule rather than drift when an insert is slow.
      let due = Math.round((command.rate * elapsed) / 1000) - inserted
      while (due > 0) {
        const n = Math.min(due, maxRows)
        const before = Date.now()
        const result = await client.query<{ first: number; last: number; n: number }>({ ...statement, values: [n] })
        const t = Date.now()
        const row = result.rows[0]!
        insertMs += t - before
        statements += 1
        inserted += row.n
        due -= row.n
        emit({ gen: "commit", label: command.label, t, sentAt: before, first: row.first, last: row.last, n: row.n })
        if (command.updates === true) {
          for (const l of lifecycle) {
            const ids: Array<number> = []
            for (let id = row.first; id <= row.last; id++) if (l.applies(id)) ids.push(id)
            if (ids.length > 0) lifecycleDue.push({ at: t + l.afterMs, ids, step: l.step })
          }
          lifecycleDue.sort((a, b) => a.at - b.at)
        }
      }
      if (command.updates === true) await runUpdates(Date.now())
      if (elapsed >= command.durationMs) break
      const wait = dueAt - Date.now()
      if (wait > 0) await sleep(wait)
    }
    const ms = Date.now() - started
    // The lifecycles of the last orders go on after the inserts ended.
    while (lifecycleDue.length > 0) {
      const wait = lifecycleDue[0]!.at - Date.now()
      if (wait > 0) await sleep(Math.min(wait, command.tickMs))
      await runUpdates(Date.now())
    }
    emit({ gen: "done", label: command.label, inserted, updated, ms, statements, insertMs, achievedRate: Math.round((inserted * 1000) / ms) })
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
