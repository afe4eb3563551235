/**
 * Programs start with the same Node options however they are started: `npm run` (package.json),
 * Docker Compose, and the tests, benchmark and chaos run (scripts/programs.ts). Stopping `npm run`
 * with a signal is tested in test/integration/npmRunSignals.test.ts.
 */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { parse } from "yaml"
import { programNodeOptions } from "../../scripts/programs.ts"
import { repoRoot } from "../../scripts/stack/paths.ts"

const scripts = (JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts
const compose = parse(readFileSync(join(repoRoot, "docker-compose.yml"), "utf8")) as {
  services: Record<string, { command?: ReadonlyArray<string> }>
}

describe("program launch options", () => {
  it("npm run starts each program's bundle with its Node options", () => {
    for (const [npmName, program] of [["producer", "producer"], ["consumer", "consumer"], ["generate", "generate"], ["query", "query"], ["lake:stats", "lakeStats"], ["demo", "demo"], ["config:check", "configCheck"]] as const) {
      // `exec`: the shell npm runs the script in becomes the program, so a signal to npm's child
      // reaches the program itself (sh would neither forward it nor exit).
      const command = scripts[npmName]!.split("&&").pop()!.trim().split(/\s+/)
      expect(command, npmName).toEqual(["exec", "node", ...programNodeOptions[program], `dist/bin/${program}.mjs`])
    }
    expect(programNodeOptions.consumer).toContain("--max-old-space-size=512")
  })

  it("docker compose starts the producer and consumer with the same options", () => {
    expect(compose.services["producer"]!.command).toEqual([...programNodeOptions.producer, "dist/bin/producer.mjs"])
    expect(compose.services["consumer"]!.command).toEqual([...programNodeOptions.consumer, "dist/bin/consumer.mjs"])
  })
})
