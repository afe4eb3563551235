/**
 * The load generator, run as its own process so that its work never delays the benchmark's clock
 * for lake files. It inserts realistic orders (server-side, see database.ts) at a fixed rate, in a
 * transaction per tick, and reports each commit: the time the COMMIT returned and the order_ids.
 *
 *   stdin : {"run":{"label":"steady-1000","rate":1000,"durationMs":60000,"tickMs":20}} | {"quit":true}
 *   stdout: {"gen":"ready"} | {"gen":"commit",...} | {"gen":"done",...} | {"gen":"error",...}
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
}

const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ gen: event["gen"], ...event })}\n`)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const main = async () => {
  const client = new pg.Client({ connectionString: process.env["BENCH_PG_URL"], application_name: "food-orders-bench-generator" })
  await client.connect()
  const sql = insertNowSql(process.env["BENCH_TABLE"]!)
  // Prepared once: the server plans it once, each tick only binds the count.
  const statement = { name: "bench_insert", text: sql }

  const runStep = async (command: RunCommand) => {
    const started = Date.now()
    const maxRows = command.maxRowsPerStatement ?? 10_000
    let inserted = 0
    let statements = 0
    let insertMs = 0
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
      }
      if (elapsed >= command.durationMs) break
      const wait = dueAt - Date.now()
      if (wait > 0) await sleep(wait)
    }
    const ms = Date.now() - started
    emit({ gen: "done", label: command.label, inserted, ms, statements, insertMs, achievedRate: Math.round((inserted * 1000) / ms) })
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
