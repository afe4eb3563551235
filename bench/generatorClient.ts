/** The benchmark's side of the generator process: run a step at a rate, collect its commits. */
import { type Program, startProgram } from "./children.ts"

export interface Commit {
  readonly label: string
  /** ms since epoch when the COMMIT returned to the generator. */
  readonly t: number
  readonly sentAt: number
  readonly first: number
  readonly last: number
  readonly n: number
}

/** A transaction of lifecycle updates (run with `updates`). */
export interface UpdateCommit {
  readonly label: string
  readonly t: number
  readonly sentAt: number
  /** The transaction's id modulo 2^32, as pgoutput (and the change messages' xid header) carry it. */
  readonly xid: number
  readonly n: number
}

export interface StepDone {
  readonly label: string
  readonly inserted: number
  readonly ms: number
  readonly statements: number
  readonly insertMs: number
  readonly achievedRate: number
  readonly updated?: number
}

export interface Generator {
  readonly program: Program
  readonly commits: Array<Commit>
  readonly updates: Array<UpdateCommit>
  /** Runs one step to its end (with `updates`: each order's lifecycle updates too, see generator.ts). */
  readonly run: (label: string, rate: number, durationMs: number, tickMs: number, updates?: boolean) => Promise<StepDone>
  /** Rows committed so far (all steps). */
  readonly committed: () => number
  readonly stop: () => Promise<void>
}

export const startGenerator = async (pgUrl: string, table: string): Promise<Generator> => {
  const commits: Array<Commit> = []
  const updates: Array<UpdateCommit> = []
  let committed = 0
  const pending = new Map<string, { resolve: (done: StepDone) => void; reject: (error: Error) => void }>()
  let ready: () => void = () => undefined
  const isReady = new Promise<void>((resolve) => (ready = resolve))
  const program = startProgram({
    name: "generator",
    script: "bench/generator.ts",
    env: { BENCH_PG_URL: pgUrl, BENCH_TABLE: table },
    stdin: true,
    onLine: (line) => {
      if (!line.startsWith("{\"gen\"")) return
      const event = JSON.parse(line) as Record<string, unknown> & { gen: string; label?: string }
      if (event.gen === "ready") ready()
      else if (event.gen === "commit") {
        commits.push(event as unknown as Commit)
        committed += Number(event["n"])
      } else if (event.gen === "update") {
        updates.push(event as unknown as UpdateCommit)
      } else if (event.gen === "done") {
        pending.get(event.label!)?.resolve(event as unknown as StepDone)
        pending.delete(event.label!)
      } else if (event.gen === "error") {
        const error = new Error(`generator: ${String(event["error"])}`)
        if (event.label !== undefined) pending.get(event.label)?.reject(error)
        else for (const waiter of pending.values()) waiter.reject(error)
      }
    }
  })
  await Promise.race([
    isReady,
    program.exited.then(() => {
      throw new Error(`the generator exited at start: ${program.stderr().slice(-2000)}`)
    })
  ])
  return {
    program,
    commits,
    updates,
    committed: () => committed,
    run: (label, rate, durationMs, tickMs, withUpdates = false) =>
      new Promise<StepDone>((resolve, reject) => {
        pending.set(label, { resolve, reject })
        program.child.stdin!.write(`${JSON.stringify({ run: { label, rate, durationMs, tickMs, ...(withUpdates ? { updates: true } : {}) } })}\n`)
        void program.exited.then(() => reject(new Error(`the generator exited during ${label}: ${program.stderr().slice(-2000)}`)))
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
