import { type ChildProcess, spawn } from "node:child_process"
import { appendFileSync, closeSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { programArgs } from "../programs.ts"
import { repoRoot } from "../stack/paths.ts"
import { sleep } from "./timing.ts"

export type ProgramName = "producer" | "consumer"

/** Where `src/runtime/crashPoints.ts` can make a program SIGKILL itself, between two steps. */
export const crashPointsOf: Record<ProgramName, ReadonlyArray<string>> = {
  producer: ["producer.after-publish"],
  consumer: [
    "consumer.after-lake-files",
    "consumer.after-dead-letters",
    "consumer.after-commit",
    "compactor.after-merged-file",
    "compactor.after-commit",
    "cleanup.mid-log",
    "cleanup.mid-vacuum"
  ]
}

/**
 * The crash points a program passes in a capture mode: with logical capture the consumer also
 * commits the change history first (`consumer.after-history-commit`: history written, orders not yet).
 */
export const crashPointsFor = (program: ProgramName, capture: "poll" | "logical"): ReadonlyArray<string> =>
  program === "consumer" && capture === "logical" ? [...crashPointsOf.consumer, "consumer.after-history-commit"] : crashPointsOf[program]

/** How one process of a program ended. */
export type ExitKind =
  | "killed" // we SIGKILLed it
  | "crash-point" // it SIGKILLed itself at its FOP_CRASH_AT point
  | "stopped" // we sent SIGTERM and it exited 0
  | "unexpected" // anything else: the programs are meant to retry through every outage, not exit

export interface Incarnation {
  readonly n: number
  readonly pid: number
  readonly crashAt: string | null
  readonly startedAt: number
  endedAt?: number
  code?: number | null
  signal?: NodeJS.Signals | null
  kind?: ExitKind
}

interface Running {
  readonly child: ChildProcess
  readonly incarnation: Incarnation
  readonly exited: Promise<Incarnation>
  expected: "killed" | "stopped" | null
  /** How far this process's stdout has been read (byte offset in outFile), and its lines so far. */
  scanned: number
  readonly lines: Array<string>
}

/**
 * One pipeline program as a long-running child process, the way `npm run producer` runs it, with its
 * JSON log lines appended to `<logDir>/<program>.out.log` (stderr: `.err.log`) across restarts; a
 * `{"chaos":...}` line marks each start and end, so a finding can be traced to the process that had it.
 * While `keepAlive` is on, a process that dies on its own (crash point, or unexpectedly) is restarted
 * after `restartDelayMs()`.
 */
export class ProgramSupervisor {
  readonly incarnations: Array<Incarnation> = []
  private running: Running | null = null
  private pendingStart: Promise<void> | null = null
  private keepAlive = true
  readonly outFile: string
  readonly errFile: string
  readonly pidFile: string

  constructor(
    readonly program: ProgramName,
    private readonly env: Readonly<Record<string, string>>,
    logDir: string,
    pidDir: string,
    private readonly restartDelayMs: () => number,
    /** Which process of the program this is, when several run (`consumer-2`): names its log and pid files. */
    readonly name: string = program,
    /** The program's own arguments (`--config FILE` when the run needs settings the environment cannot give: `tables:`). */
    private readonly args: ReadonlyArray<string> = []
  ) {
    mkdirSync(logDir, { recursive: true })
    mkdirSync(pidDir, { recursive: true })
    this.outFile = join(logDir, `${name}.out.log`)
    this.errFile = join(logDir, `${name}.err.log`)
    this.pidFile = join(pidDir, `${name}.pid`)
  }

  private mark(event: Record<string, unknown>): void {
    const line = JSON.stringify({ chaos: true, program: this.name, at: new Date().toISOString(), ...event }) + "\n"
    appendFileSync(this.outFile, line)
    appendFileSync(this.errFile, line)
  }

  /** Starts a process now; `crashAt` arms one crash point (`<point>:<n>`) for this process only. */
  start(crashAt: string | null = null): Incarnation {
    if (this.running !== null) throw new Error(`${this.name} is already running (pid ${this.running.incarnation.pid})`)
    const n = this.incarnations.length + 1
    this.mark({ event: "start", incarnation: n, crash_at: crashAt })
    const scanned = statSync(this.outFile).size
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.env, LOG_FORMAT: "json" }
    delete env["FOP_CRASH_AT"]
    if (crashAt !== null) env["FOP_CRASH_AT"] = crashAt
    const out = openSync(this.outFile, "a")
    const err = openSync(this.errFile, "a")
    let child: ChildProcess
    try {
      // Own process group: a terminal's Ctrl-C must reach only the run, which then stops us in order.
      child = spawn(process.execPath, [...programArgs(this.program), ...this.args], {
        cwd: repoRoot,
        env,
        detached: true,
        stdio: ["ignore", out, err]
      })
    } finally {
      closeSync(out)
      closeSync(err)
    }
    if (child.pid === undefined) throw new Error(`could not start ${this.name}`)
    writeFileSync(this.pidFile, `${child.pid}\n`)
    const incarnation: Incarnation = { n, pid: child.pid, crashAt, startedAt: Date.now() }
    this.incarnations.push(incarnation)
    const exited = new Promise<Incarnation>((resolve) => {
      child.once("exit", (code, signal) => {
        const running = this.running
        this.running = null
        rmSync(this.pidFile, { force: true })
        incarnation.endedAt = Date.now()
        incarnation.code = code
        incarnation.signal = signal
        incarnation.kind = running?.expected === "killed" && signal === "SIGKILL"
          ? "killed"
          : running?.expected === "stopped" && code === 0
          ? "stopped"
          : crashAt !== null && signal === "SIGKILL" && running?.expected === null
          ? "crash-point"
          : "unexpected"
        this.mark({ event: "exit", incarnation: n, code, signal, kind: incarnation.kind })
        resolve(incarnation)
        if (this.keepAlive && running?.expected === null) this.restartLater(null)
      })
    })
    child.once("error", (error) => this.mark({ event: "error", incarnation: n, error: error.message }))
    this.running = { child, incarnation, exited, expected: null, scanned, lines: [] }
    return incarnation
  }

  /** Starts a new process after `delayMs` unless one is already running or scheduled. */
  restartLater(crashAt: string | null, delayMs = this.restartDelayMs()): Promise<void> {
    if (this.pendingStart !== null) return this.pendingStart
    this.pendingStart = (async () => {
      await sleep(delayMs)
      this.pendingStart = null
      if (this.running === null && this.keepAlive) this.start(crashAt)
    })()
    return this.pendingStart
  }

  /** Reads what the running process printed since the last look; returns all its lines so far. */
  private linesOf(running: Running): ReadonlyArray<string> {
    const size = statSync(this.outFile).size
    if (size > running.scanned) {
      const buffer = Buffer.alloc(size - running.scanned)
      const fd = openSync(this.outFile, "r")
      try {
        readSync(fd, buffer, 0, buffer.length, running.scanned)
      } finally {
        closeSync(fd)
      }
      const complete = buffer.lastIndexOf(0x0a) + 1 // a half-written line is read next time
      running.scanned += complete
      running.lines.push(...buffer.subarray(0, complete).toString("utf8").split("\n").filter((l) => l.length > 0))
    }
    return running.lines
  }

  /**
   * Waits (up to `timeoutMs`) until the running process has printed a line matching `pattern`;
   * false on timeout. Used to kill a program while it streams rather than while it starts, and to
   * send the final SIGTERM only once it runs its main program (before that Node's default action
   * for SIGTERM applies: the process just dies, which says nothing about the pipeline).
   */
  async waitForLog(pattern: RegExp, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    while (!signal.aborted) {
      const running = await this.current()
      if (running !== null && this.linesOf(running).some((line) => pattern.test(line))) return true
      if (Date.now() >= deadline) return false
      await sleep(150, signal)
    }
    return false
  }

  isRunning(): boolean {
    return this.running !== null
  }

  /** The process running now, after any pending restart has happened. */
  private async current(): Promise<Running | null> {
    while (this.pendingStart !== null) await this.pendingStart
    return this.running
  }

  /**
   * SIGKILLs the running process (waiting for a pending restart first, so every planned kill hits a
   * live process) and resolves once it is gone. Returns null if nothing was running.
   */
  async kill(): Promise<Incarnation | null> {
    const running = await this.current()
    if (running === null) return null
    running.expected = "killed"
    running.child.kill("SIGKILL")
    return running.exited
  }

  /**
   * The end of the run: no more restarts; SIGTERM and wait up to `timeoutMs` for the process to
   * finish its batch in flight and exit 0, SIGKILL after that. Returns the last process's ending.
   */
  async stop(timeoutMs: number): Promise<{ incarnation: Incarnation | null; ms: number; timedOut: boolean }> {
    this.keepAlive = false
    const running = await this.current()
    if (running === null) return { incarnation: null, ms: 0, timedOut: false }
    const started = Date.now()
    running.expected = "stopped"
    running.child.kill("SIGTERM")
    const timedOut = await Promise.race([running.exited.then(() => false), sleep(timeoutMs).then(() => true)])
    if (timedOut) {
      running.child.kill("SIGKILL")
      await running.exited
    }
    return { incarnation: running.incarnation, ms: Date.now() - started, timedOut }
  }

  /** Last resort in finally blocks: no restarts, SIGKILL whatever still runs. */
  async forceStop(): Promise<void> {
    this.keepAlive = false
    while (this.pendingStart !== null) await this.pendingStart
    const running = this.running
    if (running === null) return
    running.expected = "killed"
    running.child.kill("SIGKILL")
    await running.exited
  }
}
