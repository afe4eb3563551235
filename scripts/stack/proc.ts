import { execFileSync, spawn } from "node:child_process"
import { accessSync, constants, readFileSync } from "node:fs"
import { delimiter, join } from "node:path"

export interface RunResult {
  /** Exit code; null when the process could not start or was killed by a signal. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Written to the child's stdin, which is then closed. */
  readonly input?: string
  readonly timeoutMs?: number
}

/** Runs a command to completion and captures its output. Never rejects: callers decide what a failure means. */
export const run = (command: string, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<RunResult> =>
  new Promise((resolve) => {
    let stdout = ""
    let stderr = ""
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"]
    })
    const timer = options.timeoutMs === undefined
      ? undefined
      : setTimeout(() => child.kill("SIGKILL"), options.timeoutMs)
    child.stdout?.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()))
    child.on("error", (error) => {
      if (timer) clearTimeout(timer)
      resolve({ code: null, stdout, stderr: stderr + error.message })
    })
    child.on("close", (code) => {
      if (timer) clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    if (options.input !== undefined) child.stdin?.end(options.input)
  })

/**
 * Runs a command with its output streamed to our stderr (stdout stays clean for endpoints).
 * Resolves with the exit code.
 */
export const runVisible = (command: string, args: ReadonlyArray<string>, options: { cwd?: string } = {}): Promise<number | null> =>
  new Promise((resolve) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ["ignore", 2, 2] })
    child.on("error", (error) => {
      process.stderr.write(`${error.message}\n`)
      resolve(null)
    })
    child.on("close", (code) => resolve(code))
  })

/** Whether an executable is on PATH (or is an existing executable path). No process is started. */
export const commandExists = (command: string): boolean => {
  const candidates = command.includes("/")
    ? [command]
    : (process.env["PATH"] ?? "").split(delimiter).filter(Boolean).map((dir) => join(dir, command))
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/** The command line of a live process, or null if there is no such process (or it is a zombie). */
export const commandLineOf = (pid: number): string | null => {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, "utf8")
    return raw.length === 0 ? null : raw.split("\0").join(" ").trim()
  } catch {
    // No /proc (macOS): ask ps.
    try {
      const out = execFileSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8" }).trim()
      return out.length === 0 ? null : out
    } catch {
      return null
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
