/**
 * Stopping `npm run producer` / `npm run consumer` with a signal, as a supervisor, a script
 * (`kill <pid>`) or a terminal (Ctrl-C signals the whole process group) does: the program finishes
 * its batch, saves its state and exits 0, npm exits 0 too, and no program is left running.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, readFileSync } from "node:fs"
import { afterAll, expect, it } from "vitest"
import { buildPrograms } from "../../scripts/programs.ts"
import { repoRoot } from "../../scripts/stack/paths.ts"
import { describeIntegration } from "../support/endpoints.ts"
import { summariseLake } from "../support/lakeSummary.ts"
import { insertOrdersSql } from "../support/orderRows.ts"
import { makeTestPipeline, type TestPipeline } from "../support/testPipeline.ts"

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** `npm run <program>` in its own process group (as a terminal's foreground job), with its JSON logs. */
const npmRun = (program: "producer" | "consumer", env: Record<string, string>) => {
  const npm = spawn("npm", ["run", program], {
    cwd: repoRoot,
    env: { ...process.env, ...env, LOG_FORMAT: "json" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true
  })
  const lines: Array<Record<string, unknown>> = []
  let output = ""
  npm.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8")
    for (const line of chunk.toString("utf8").split("\n")) {
      if (line.startsWith("{")) lines.push(JSON.parse(line) as Record<string, unknown>)
    }
  })
  npm.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8")
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.on("exit", (code, signal) => resolve({ code, signal }))
  )
  return {
    npm,
    output: () => output,
    exited,
    waitForLog: async (message: string, timeoutMs = 60_000) => {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        const found = lines.find((l) => l["message"] === message)
        if (found !== undefined) return found
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`npm run ${program}: no "${message}" log within ${timeoutMs} ms:\n${output.slice(-3000)}`)
    },
    /** The processes npm started: with `exec`, the program itself, not a shell around it. */
    children: () =>
      execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(npm.pid)]).toString().trim().split("\n").filter((l) => l !== "")
        .map((l) => {
          const [pid, ...args] = l.trim().split(/\s+/)
          return { pid: Number(pid), args: args.join(" ") }
        })
  }
}

describeIntegration("npm run, stopped by a signal", (endpoints) => {
  let pipeline: TestPipeline | undefined
  const started: Array<ReturnType<typeof npmRun>> = []
  afterAll(async () => {
    for (const run of started) if (run.npm.exitCode === null) process.kill(-run.npm.pid!, "SIGKILL")
    await pipeline?.close()
  })

  const startBoth = async (p: TestPipeline) => {
    const producer = npmRun("producer", p.env)
    const consumer = npmRun("consumer", p.env)
    started.push(producer, consumer)
    await producer.waitForLog("serving /metrics and /health")
    await consumer.waitForLog("serving /metrics and /health")
    const programs = [producer.children(), consumer.children()]
    expect(programs[0]).toEqual([{ pid: expect.any(Number), args: expect.stringMatching(/^node .*dist\/bin\/producer\.mjs$/) }])
    expect(programs[1]).toEqual([{ pid: expect.any(Number), args: expect.stringMatching(/^node .*dist\/bin\/consumer\.mjs$/) }])
    return { producer, consumer, pids: programs.map((c) => c[0]!.pid) }
  }

  const waitForLake = async (p: TestPipeline, rows: number) => {
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      if ((await summariseLake(p.lake).catch(() => undefined))?.rows === rows) return
      await new Promise((r) => setTimeout(r, 500))
    }
    expect((await summariseLake(p.lake)).rows).toBe(rows)
  }

  it("SIGTERM to npm's pid and SIGINT to its process group (Ctrl-C) stop both programs cleanly; npm exits 0", async () => {
    buildPrograms()
    const p = pipeline = await makeTestPipeline(endpoints, "npmsig", { extra: { STREAMING_BATCH_INTERVAL: "0.5" } })
    const cursorFile = p.env["STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION"]!

    for (const [round, signal, target] of [[1, "SIGTERM", "npm"], [2, "SIGINT", "group"]] as const) {
      const { consumer, pids, producer } = await startBoth(p)
      await p.pool.query(insertOrdersSql(p.table, round * 1000, 300, `2025-06-0${round} 10:00:00`, 7))
      await waitForLake(p, round * 300)

      for (const run of [producer, consumer]) {
        if (target === "npm") run.npm.kill(signal)
        else process.kill(-run.npm.pid!, signal)
      }
      for (const run of [producer, consumer]) {
        expect(await run.exited, run.output().slice(-3000)).toEqual({ code: 0, signal: null })
      }
      // The programs are gone (not orphaned) and said they stopped after saving their state.
      await new Promise((r) => setTimeout(r, 200))
      expect(pids.filter(isAlive)).toEqual([])
      expect(producer.output()).not.toContain("\"logLevel\":\"ERROR\"")
      expect(consumer.output()).not.toContain("\"logLevel\":\"ERROR\"")
      expect(existsSync(cursorFile)).toBe(true)
      const cursor = JSON.parse(readFileSync(cursorFile, "utf8")) as { created_at: string }
      expect(cursor.created_at.slice(0, 10)).toBe(`2025-06-0${round}`)
      await waitForLake(p, round * 300)
    }
  }, 240_000)
})
