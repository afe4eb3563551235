import { execFileSync } from "node:child_process"
import { join } from "node:path"
import { repoRoot } from "./stack/paths.ts"

/** The programs of src/bin, as `scripts/build.mjs` bundles them. */
export type ProgramName = "producer" | "consumer" | "generate" | "query" | "lakeStats" | "demo" | "configCheck"

/** The bundle `npm run <program>` runs: pass it to `node`. */
export const programScript = (program: ProgramName): string => join(repoRoot, "dist", "bin", `${program}.mjs`)

/**
 * Node options a program runs with, wherever it is started (package.json, Dockerfile and
 * docker-compose.yml repeat them; a unit test holds them equal).
 *
 * The consumer: V8 sizes its heap growth from the heap limit, which Node derives from the machine's
 * memory. On a 24 GiB machine old space may grow to ~4x the live data before a full collection, and
 * a backfill's short-lived garbage (fetched messages, Parquet column buffers) took the consumer to
 * 305-342 MiB resident with ~40 MiB live. An explicit 512 MiB limit makes V8 collect at ~1.5x
 * instead: ~190-200 MiB resident, with room to spare for the largest batch the flush policy allows
 * (max_batch_bytes). The producer: logical capture streams a large transaction in pieces (a
 * 100,000-row COMMIT holds little live data), yet with Node's default limit V8 let it grow to
 * 270-285 MiB resident; capped, 169 MiB at 96 MiB of old space. 192 MiB keeps it under the 256 MiB
 * a program may take without the collections that a tight cap costs a CPU-bound poll backfill.
 */
export const programNodeOptions: Readonly<Record<ProgramName, ReadonlyArray<string>>> = {
  producer: ["--max-old-space-size=192"],
  consumer: ["--max-old-space-size=512"],
  generate: [],
  query: [],
  lakeStats: [],
  demo: [],
  configCheck: []
}

/** `node` arguments that start a program as `npm run <program>` does. */
export const programArgs = (program: ProgramName): Array<string> => [...programNodeOptions[program], programScript(program)]

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
