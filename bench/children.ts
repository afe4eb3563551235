/**
 * The processes the benchmark runs: the pipeline's own entry points (exactly as `npm run producer`
 * runs them: node on the dist/bin bundle), the generator and the reference poller. Each one's JSON log lines are
 * kept with the time they arrived, its memory and CPU are sampled from /proc, and it is stopped
 * (SIGTERM, then SIGKILL) by the cleanup registry if the benchmark ends early. A detached watchdog
 * stops it even if the benchmark itself is SIGKILLed.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { programNodeOptions, programScript } from "../scripts/programs.ts"
import { repoRoot } from "../scripts/stack/paths.ts"
import { onCleanup } from "./cleanup.ts"
import { readMemory, resetPeak, sampleUsage } from "./procStats.ts"

export interface LogLine {
  /** When the benchmark read the line (ms since epoch). */
  readonly receivedAt: number
  readonly message: string
  readonly annotations: Record<string, unknown>
  readonly level: string
}

export interface StartOptions {
  /** Short name for messages and profile files. */
  readonly name: string
  /** A pipeline program, started as `npm run` starts it (its bundle and Node options) ... */
  readonly program?: "producer" | "consumer"
  /** ... or a benchmark script (path relative to the repository root), run through tsx. */
  readonly script?: string
  readonly args?: ReadonlyArray<string>
  /** Extra Node options after the program's own (e.g. a heap cap the program does not set itself). */
  readonly nodeArgs?: ReadonlyArray<string>
  readonly env: Record<string, string>
  /** Directory for a V8 CPU profile of this process (written when it exits cleanly). */
  readonly cpuProfileDir?: string
  /** Called for every stdout line that is not JSON (e.g. a generator protocol line), and for JSON lines too. */
  readonly onLine?: (line: string, receivedAt: number) => void
  readonly stdin?: boolean
}

export interface Program {
  readonly name: string
  readonly pid: number
  readonly child: ChildProcess
  readonly logs: Array<LogLine>
  readonly usage: ReturnType<typeof sampleUsage>
  /** stderr so far (kept to the last 64 KiB). */
  readonly stderr: () => string
  /** The end of stdout and stderr, for error messages. */
  readonly output: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly isRunning: () => boolean
  /** Resolves with the first log line matching (already received or future); rejects on timeout or exit. */
  readonly waitForLog: (match: (line: LogLine) => boolean, timeoutMs: number) => Promise<LogLine>
  /** The kernel's peak RSS (VmHWM) so far, MiB. */
  readonly peakRssMiB: () => number | null
  readonly resetPeak: () => boolean
  /** SIGTERM, SIGKILL after `graceMs`; resolves when the process is gone. Idempotent. */
  readonly stop: (graceMs?: number) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const watchdogScript = `
owner=$1 child=$2
while kill -0 "$owner" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1; done
if kill -0 "$child" 2>/dev/null; then
  kill -TERM "$child"; i=0
  while kill -0 "$child" 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i+1)); done
  kill -KILL "$child" 2>/dev/null
fi`

const spawnWatchdog = (childPid: number): void => {
  const watchdog = spawn("sh", ["-c", watchdogScript, "bench-watchdog", String(process.pid), String(childPid)], {
    detached: true,
    stdio: "ignore"
  })
  watchdog.on("error", () => undefined)
  watchdog.unref()
}

export const startProgram = (options: StartOptions): Program => {
  // The pipeline programs run as bundles (dist/bin, as `npm run` runs them); bench scripts through tsx.
  const nodeArgs = options.program === undefined ? ["--import", "tsx"] : [...programNodeOptions[options.program]]
  nodeArgs.push(...(options.nodeArgs ?? []))
  if (options.cpuProfileDir !== undefined) {
    // One directory per program: Node writes one profile per thread (tsx runs its module hooks in a
    // worker), named by pid and thread, and the summary picks the main thread's.
    const dir = join(options.cpuProfileDir, options.name)
    mkdirSync(dir, { recursive: true })
    nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${dir}`)
  }
  const script = options.program === undefined ? join(repoRoot, options.script ?? "") : programScript(options.program)
  const child = spawn(process.execPath, [...nodeArgs, script, ...(options.args ?? [])], {
    cwd: repoRoot,
    env: { ...process.env, ...options.env, LOG_FORMAT: "json" },
    stdio: [options.stdin === true ? "pipe" : "ignore", "pipe", "pipe"]
  })
  if (child.pid === undefined) throw new Error(`could not start ${options.name}`)
  const pid = child.pid
  spawnWatchdog(pid)
  const logs: Array<LogLine> = []
  const waiters = new Set<() => void>()
  let buffered = ""
  let stderr = ""
  let stdoutTail = ""
  let running = true
  child.stdout!.on("data", (chunk: Buffer) => {
    const receivedAt = Date.now()
    buffered += chunk.toString("utf8")
    stdoutTail = (stdoutTail + chunk.toString("utf8")).slice(-8192)
    const parts = buffered.split("\n")
    buffered = parts.pop()!
    for (const part of parts) {
      options.onLine?.(part, receivedAt)
      if (!part.startsWith("{\"message\"")) continue
      try {
        const parsed = JSON.parse(part) as { message: string; logLevel: string; annotations?: Record<string, unknown> }
        logs.push({ receivedAt, message: parsed.message, level: parsed.logLevel, annotations: parsed.annotations ?? {} })
      } catch {
        // not a log line
      }
    }
    for (const wake of waiters) wake()
  })
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString("utf8")).slice(-65536)
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => {
      running = false
      for (const wake of waiters) wake()
      resolve({ code, signal })
    })
  )
  const usage = sampleUsage(pid)
  let stopping: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined
  const stop = (graceMs = 20_000) =>
    (stopping ??= (async () => {
      usage.stop()
      if (running) {
        child.kill("SIGTERM")
        const timer = setTimeout(() => {
          if (running) child.kill("SIGKILL")
        }, graceMs)
        const result = await exited
        clearTimeout(timer)
        return result
      }
      return exited
    })())
  const unregister = onCleanup(`stop ${options.name} (pid ${pid})`, async () => {
    await stop(10_000)
  })
  void exited.then(() => unregister())
  return {
    name: options.name,
    pid,
    child,
    logs,
    usage,
    stderr: () => stderr,
    output: () => `${stdoutTail.slice(-3000)}${stderr.slice(-3000)}`,
    exited,
    isRunning: () => running,
    waitForLog: (match, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = logs.find(match)
          if (found !== undefined) {
            done()
            resolve(found)
          } else if (!running) {
            done()
            reject(new Error(`${options.name} exited before the expected log line; output:\n${stdoutTail.slice(-3000)}${stderr.slice(-3000)}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`${options.name}: no expected log line within ${timeoutMs} ms; output:\n${stdoutTail.slice(-3000)}${stderr.slice(-3000)}`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      }),
    peakRssMiB: () => {
      const memory = readMemory(pid)
      return memory === null ? null : Math.round((memory.hwmKiB / 1024) * 10) / 10
    },
    resetPeak: () => resetPeak(pid),
    stop
  }
}
