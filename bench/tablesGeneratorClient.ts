/** The benchmark's side of tablesGenerator.ts: run a step of changes spread over tables, collect its transactions. */
import { type Program, startProgram } from "./children.ts"
import type { GeneratedTable } from "./tablesGenerator.ts"

export interface ChangeCounts {
  readonly inserted: number
  readonly updated: number
}

export interface TablesCommit {
  readonly label: string
  /** ms since epoch when the COMMIT returned to the generator. */
  readonly t: number
  readonly sentAt: number
  /** The transaction's id modulo 2^32, as the change messages' `xid` header carries it. */
  readonly xid: number
  readonly changes: Readonly<Partial<Record<GeneratedTable, ChangeCounts>>>
}

export interface TablesStepDone {
  readonly label: string
  readonly ms: number
  readonly transactions: number
  readonly changes: Readonly<Partial<Record<GeneratedTable, ChangeCounts>>>
  readonly achievedRate: number
}

export interface TablesGenerator {
  readonly program: Program
  readonly commits: Array<TablesCommit>
  readonly run: (label: string, rate: number, durationMs: number, tickMs: number, tables: ReadonlyArray<GeneratedTable>) => Promise<TablesStepDone>
  /** Rows inserted into `table` so far (all steps). */
  readonly inserted: (table: GeneratedTable) => number
  readonly stop: () => Promise<void>
}

export const startTablesGenerator = async (pgUrl: string, ordersTable: string): Promise<TablesGenerator> => {
  const commits: Array<TablesCommit> = []
  const inserted = new Map<GeneratedTable, number>()
  const pending = new Map<string, { resolve: (done: TablesStepDone) => void; reject: (error: Error) => void }>()
  let ready: () => void = () => undefined
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  const program = startProgram({
    name: "tables-generator",
    script: "bench/tablesGenerator.ts",
    env: { BENCH_PG_URL: pgUrl, BENCH_TABLE: ordersTable },
    stdin: true,
    onLine: (line) => {
      if (!line.startsWith("{\"gen\"")) return
      const event = JSON.parse(line) as Record<string, unknown> & { gen: string; label?: string }
      if (event.gen === "ready") ready()
      else if (event.gen === "commit") {
        const commit = event as unknown as TablesCommit
        commits.push(commit)
        for (const [table, counts] of Object.entries(commit.changes)) {
          inserted.set(table as GeneratedTable, (inserted.get(table as GeneratedTable) ?? 0) + counts.inserted)
        }
      } else if (event.gen === "done") {
        pending.get(event.label!)?.resolve(event as unknown as TablesStepDone)
        pending.delete(event.label!)
      } else if (event.gen === "error") {
        const error = new Error(`tables generator: ${String(event["error"])}`)
        if (event.label !== undefined) pending.get(event.label)?.reject(error)
        else for (const waiter of pending.values()) waiter.reject(error)
      }
    }
  })
  await Promise.race([
    isReady,
    program.exited.then(() => {
      throw new Error(`the tables generator exited at start: ${program.stderr().slice(-2000)}`)
    })
  ])
  return {
    program,
    commits,
    inserted: (table) => inserted.get(table) ?? 0,
    run: (label, rate, durationMs, tickMs, tables) =>
      new Promise<TablesStepDone>((resolve, reject) => {
        pending.set(label, { resolve, reject })
        program.child.stdin!.write(`${JSON.stringify({ run: { label, rate, durationMs, tickMs, tables } })}\n`)
        void program.exited.then(() => reject(new Error(`the tables generator exited during ${label}: ${program.stderr().slice(-2000)}`)))
      }),
    stop: async () => {
      program.child.stdin?.end(`${JSON.stringify({ quit: true })}\n`)
      const timer = setTimeout(() => void program.stop(5_000), 5_000)
      await program.exited
      clearTimeout(timer)
      await program.stop()
    }
  }
}
