/**
 * package-lock.json is the single source of versions: `npm ci` (CI, the Dockerfile, a new user's
 * clone) installs exactly it and refuses a lock that disagrees with package.json. Its most likely way
 * to drift is an install against a registry that lacks some other platform's optional binary (a
 * `@rollup/rollup-darwin-arm64` of the newest version): npm then writes a lock without it, this machine
 * still installs, and every machine with the full registry gets "Missing: … from lock file".
 */
import { execFile } from "node:child_process"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "../../scripts/stack/paths.ts"

interface LockedPackage {
  readonly version?: string
  readonly resolved?: string
  readonly integrity?: string
  readonly link?: boolean
  readonly dependencies?: Readonly<Record<string, string>>
  readonly optionalDependencies?: Readonly<Record<string, string>>
  readonly devDependencies?: Readonly<Record<string, string>>
  readonly peerDependencies?: Readonly<Record<string, string>>
  readonly peerDependenciesMeta?: Readonly<Record<string, { optional?: boolean }>>
}

const manifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as Record<string, unknown>
const lock = JSON.parse(readFileSync(join(repoRoot, "package-lock.json"), "utf8")) as {
  lockfileVersion: number
  packages: Readonly<Record<string, LockedPackage>>
}
const packages = lock.packages

/** Where Node (and npm) resolve `name` from the package at `from`: the nearest node_modules up the tree. */
const resolveFrom = (from: string, name: string): string | undefined => {
  let base = from
  while (true) {
    const path = `${base === "" ? "" : `${base}/`}node_modules/${name}`
    if (packages[path] !== undefined) return path
    if (base === "") return undefined
    const up = base.lastIndexOf("/node_modules/")
    base = up < 0 ? "" : base.slice(0, up)
  }
}

describe("package-lock.json", () => {
  it("records package.json's dependencies as they are", () => {
    expect(lock.lockfileVersion).toBe(3)
    const root = packages[""]!
    for (const kind of ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies"] as const) {
      expect(root[kind] ?? {}, kind).toEqual(manifest[kind] ?? {})
    }
  })

  it("lists every dependency of every locked package, other platforms' optional binaries included", () => {
    const missing: Array<string> = []
    for (const [path, pkg] of Object.entries(packages)) {
      for (const kind of ["dependencies", "optionalDependencies", "peerDependencies"] as const) {
        for (const [name, range] of Object.entries(pkg[kind] ?? {})) {
          if (kind === "peerDependencies" && pkg.peerDependenciesMeta?.[name]?.optional === true) continue
          if (resolveFrom(path, name) === undefined) missing.push(`${path === "" ? "package.json" : path} -> ${name}@${range} (${kind})`)
        }
      }
    }
    expect(missing).toEqual([])
  })

  it("pins each package to a version and its integrity, fetched from whatever registry the user configures", () => {
    // No `resolved` URLs (or only the public registry's): a mirror or a private registry serves the
    // same tarballs, checked against the same integrity.
    const unpinned = Object.entries(packages)
      .filter(([path, pkg]) => path !== "" && pkg.link !== true)
      .filter(([, pkg]) =>
        pkg.version === undefined || !pkg.integrity?.startsWith("sha512-") ||
        (pkg.resolved !== undefined && !pkg.resolved.startsWith("https://registry.npmjs.org/"))
      )
      .map(([path]) => path)
    expect(unpinned).toEqual([])
  })

  it("is accepted by npm ci (dry run, offline: the versions satisfy package.json's ranges)", async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        "npm",
        ["ci", "--dry-run", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"],
        { cwd: repoRoot, timeout: 60_000 },
        (error, _stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stderr })
      )
    )
    expect(result.code, result.stderr).toBe(0)
  }, 90_000)
})
