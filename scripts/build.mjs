// Bundles each program in src/bin into dist/bin/<name>.mjs (esbuild): `node scripts/build.mjs`.
//
// Why a bundle and not tsx at run time: the benchmark measured a producer or consumer under tsx at
// ~235 MB resident before it did any work, and 3-4 s of CPU to start (tsx transpiles every module of
// the graph on each start). The bundle starts in under a second at ~90 MB. The npm scripts build
// before they run, so dist/ never drifts from src/ (a build takes about a second).
//
// Plain JavaScript on purpose: it runs before anything is compiled, with nothing but Node.
import { build } from "esbuild"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const quiet = process.argv.includes("--quiet")

// kafkajs 2.2.4 is unmaintained; four of its hot paths are replaced in the bundle by
// src/layers/kafka/patches (why, in each file). Only the exact files they were written against:
// a different kafkajs fails the build, so nobody runs a patch against code it was not tested with.
const kafkajsPatches = [
  {
    original: "node_modules/kafkajs/src/protocol/recordBatch/record/v0/index.js",
    sha256: "ffbc628c1f35f5de8ba798165616b1009d9af1c27ca959999a10e6e3c18f8215",
    patch: "src/layers/kafka/patches/recordV0.cjs"
  },
  {
    original: "node_modules/kafkajs/src/protocol/recordBatch/record/v0/decoder.js",
    sha256: "86d740054c8be29b02873bf2871eb43ba5004af94324610541dbab2d9fabcc65",
    patch: "src/layers/kafka/patches/recordDecoderV0.cjs"
  },
  {
    original: "node_modules/kafkajs/src/protocol/recordBatch/crc32C/crc32C.js",
    sha256: "1c09c7a44e7a207f2dabb920e6bf9f6b1b3fd9cc023e959a9e91ba83e5b6f61a",
    patch: "src/layers/kafka/patches/crc32C.cjs"
  },
  {
    original: "node_modules/kafkajs/src/producer/groupMessagesPerPartition.js",
    sha256: "ea72357721fbf67770b5e06b9bf4260faa1e60f3affb556bff2cc7892c1881fb",
    patch: "src/layers/kafka/patches/groupMessagesPerPartition.cjs"
  }
]

const patchKafkajs = {
  name: "kafkajs-patches",
  setup(build) {
    const byPath = new Map(kafkajsPatches.map((p) => [join(root, p.original), p]))
    build.onLoad({ filter: /[\\/]kafkajs[\\/]src[\\/].*\.js$/ }, (args) => {
      const entry = byPath.get(args.path)
      if (entry === undefined) return undefined
      const digest = createHash("sha256").update(readFileSync(args.path)).digest("hex")
      if (digest !== entry.sha256) {
        throw new Error(`${entry.original} is not the kafkajs 2.2.4 file ${entry.patch} replaces (sha256 ${digest}); review the patch`)
      }
      return { contents: readFileSync(join(root, entry.patch), "utf8"), loader: "js", resolveDir: dirname(join(root, entry.patch)) }
    })
  }
}

const programs = readdirSync(join(root, "src/bin")).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3))

const started = Date.now()
const result = await build({
  absWorkingDir: root,
  entryPoints: programs.map((p) => ({ in: `src/bin/${p}.ts`, out: p })),
  outdir: "dist/bin",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  // Shared modules (effect, kafkajs, the domain) in chunks: one copy on disk, each program loads
  // only what it imports.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  platform: "node",
  format: "esm",
  target: "node20",
  // Native addons and packages that load files next to themselves (WASM, data) stay in node_modules.
  external: ["@duckdb/*", "@electric-sql/*", "pg-native"],
  // CommonJS dependencies (kafkajs, pg) call require() for Node built-ins.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: "warning",
  legalComments: "none",
  plugins: [patchKafkajs],
  write: false
})

// `npm run producer` and `npm run consumer` may start at the same moment, each building: a program
// must never load a half-written file. Chunks first, then entry points, each renamed into place,
// and only when changed. Chunk names carry a content hash, so a new entry point never pairs with
// an old chunk.
const outputs = [...result.outputFiles].sort((a, b) => Number(b.path.includes("/chunks/")) - Number(a.path.includes("/chunks/")))
let written = 0
for (const file of outputs) {
  if (existsSync(file.path) && readFileSync(file.path).equals(file.contents)) continue
  mkdirSync(dirname(file.path), { recursive: true })
  const temporary = `${file.path}.${process.pid}.tmp`
  writeFileSync(temporary, file.contents)
  renameSync(temporary, file.path)
  written += 1
}
// Chunks of earlier builds: nothing imports them any more.
const current = new Set(outputs.map((f) => f.path))
const chunkDir = join(root, "dist/bin/chunks")
for (const name of existsSync(chunkDir) ? readdirSync(chunkDir) : []) {
  const path = join(chunkDir, name)
  if (!current.has(path) && !name.endsWith(".tmp")) rmSync(path, { force: true })
}
if (!quiet) {
  process.stdout.write(
    `built ${programs.length} programs into ${relative(process.cwd(), join(root, "dist/bin")) || "."} ` +
      `(${written} of ${outputs.length} files changed) in ${Date.now() - started} ms\n`
  )
}
