import { homedir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

/** The repository root: this file lives in `<root>/scripts/stack/`. */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..")

/**
 * Downloads and broker state live outside the repository, so a fresh clone or
 * `git clean` never loses the ~50 MB of jars and nothing large is ever committed.
 */
export const cacheRoot = (): string =>
  join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "food-orders-pipeline")

/** State of the long-lived stack started by `npm run stack:up` (pid files, logs, endpoints.env). */
export const stackStateDir = (): string => join(cacheRoot(), "stack")

export const endpointsFile = (): string => join(stackStateDir(), "endpoints.env")
