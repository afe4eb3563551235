import { execFile, spawn } from "node:child_process"
import { join } from "node:path"
import { programArgs } from "../../scripts/programs.ts"
import { repoRoot } from "../../scripts/stack/paths.ts"

export interface PipelineEnv {
  readonly pgUrl: string
  readonly kafkaBrokers: string
  readonly roll: string
  readonly stateDir: string
  readonly extra?: Readonly<Record<string, string>>
}

/** The environment overrides that point the programs at a test's own table, topic, lake and state. */
export const pipelineEnv = (env: PipelineEnv): Record<string, string> => ({
  PG_URL: env.pgUrl,
  KAFKA_BROKERS: env.kafkaBrokers,
  POSTGRES_TABLE: `${env.roll}_orders`,
  KAFKA_TOPIC: `${env.roll}_food_orders_raw`,
  DATALAKE_PATH: join(env.stateDir, "output/orders"),
  STREAMING_CHECKPOINT_LOCATION: join(env.stateDir, "checkpoints/orders"),
  STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION: join(env.stateDir, "lastprocess/orders"),
  // Several pipelines run at once in tests: never the fixed default ports.
  OBSERVABILITY_PRODUCER_PORT: "0",
  OBSERVABILITY_CONSUMER_PORT: "0",
  // A developer's shell may hold the stack's CAPTURE_MODE: tests that want logical capture say so.
  CAPTURE_MODE: "poll",
  ...env.extra
})

export interface ProgramRun {
  readonly code: number
  /** The signal that ended the process (SIGKILL from a crash point), or null. */
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

/** Runs the bundled program (dist/bin, built by globalSetup) as its own Node process, as `npm run <program> -- args` does. */
export const runProgram = (program: "producer" | "consumer", args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<ProgramRun>((resolve) => {
    const started = Date.now()
    execFile(
      process.execPath,
      [...programArgs(program), ...args],
      { cwd: repoRoot, env: { ...process.env, ...env, LOG_FORMAT: "json" }, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
        const signal = error === null ? null : error.signal ?? null
        resolve({ code, signal, stdout, stderr, ms: Date.now() - started })
      }
    )
  })

/** The JSON log lines a program printed, parsed. */
export const logLines = (run: ProgramRun): Array<Record<string, unknown>> =>
  run.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>)

export interface RunningProgram {
  /** JSON log lines printed so far. */
  readonly logs: () => Array<Record<string, unknown>>
  /** Resolves with the first log line matching, or rejects after `timeoutMs`. */
  readonly waitForLog: (match: (line: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Record<string, unknown>>
  /** Sends a signal and resolves with the exit code (null when killed by a signal). */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
  /** Sends a signal without waiting (SIGSTOP, SIGCONT). */
  readonly signal: (signal: NodeJS.Signals) => void
  /** The process's stderr so far. */
  readonly stderr: () => string
}

/** Starts a long-running program (no `--once`) and collects its JSON logs. */
export const startProgram = (program: "producer" | "consumer", env: Record<string, string>): RunningProgram => {
  const child = spawn(process.execPath, programArgs(program), {
    cwd: repoRoot,
    env: { ...process.env, ...env, LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<Record<string, unknown>> = []
  let buffered = ""
  let stderr = ""
  const waiters = new Set<() => void>()
  child.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8")
    const parts = buffered.split("\n")
    buffered = parts.pop()!
    for (const part of parts) if (part.startsWith("{")) lines.push(JSON.parse(part) as Record<string, unknown>)
    for (const wake of waiters) wake()
  })
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8")
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return {
    logs: () => [...lines],
    waitForLog: (match, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(match)
          if (found === undefined) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(found)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`${program}: no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      }),
    stop: async (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    },
    stderr: () => stderr
  }
}
