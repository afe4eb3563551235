import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { repoRoot } from "./stack/paths.ts"

/** The programs of src/bin, as `scripts/build.mjs` bundles them. */
export type ProgramName = "producer" | "consumer" | "generate" | "query" | "lakeStats" | "demo" | "configCheck"

/** The bundle `npm run <program>` runs: pass it to `node`. */
export const programScript = (program: ProgramName): string => join(repoRoot, "dist", "bin", `${program}.mjs`)

let built = false

/**
 * Bundles src/bin into dist/bin once per process, so tests, the benchmark and the chaos run start
 * exactly what `npm run producer` / `npm run consumer` start, built from the sources as they are now.
 */
export const buildPrograms = (): void => {
  if (built) return
  execFileSync(process.execPath, [join(repoRoot, "scripts", "build.mjs"), "--quiet"], { cwd: repoRoot, stdio: "inherit" })
  built = true
}
