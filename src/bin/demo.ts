import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect } from "effect"
import { parseArgs } from "node:util"
import { runDemo } from "../demo/runDemo.ts"
import { loggerLayer } from "../runtime/logging.ts"

const usage = `Usage: npm run demo -- [--duration S] [--rate N] [--dir PATH]

The whole pipeline on this machine with nothing but Node (no Docker, Java or database): an
embedded PostgreSQL (PGlite, served over the wire to the live producer code), an in-process
Kafka topic, and a real Parquet lake. Generates orders, runs producer and consumer, then
summarises the lake with DuckDB and checks that it holds every order generated exactly once.

Options:
  --duration S  seconds of generating orders (default 20)
  --rate N      orders per second (default 50)
  --dir PATH    folder for the lake, cursor and checkpoint (default ./demo-lake); a previous
                demo's output/, checkpoints/ and lastprocess/ there are removed first
  --help        this text

Exits 0 when the lake holds every order generated, 1 otherwise.`

const fail = (message: string): never => {
  process.stderr.write(`${message}\n\n${usage}\n`)
  process.exit(2)
}

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        duration: { type: "string", default: "20" },
        rate: { type: "string", default: "50" },
        dir: { type: "string", default: "./demo-lake" },
        help: { type: "boolean", default: false }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (error) {
    return fail((error as Error).message)
  }
})()
if (parsed.help) {
  process.stdout.write(usage + "\n")
  process.exit(0)
}
const seconds = Number(parsed.duration)
const rate = Number(parsed.rate)
if (!(seconds > 0)) fail(`--duration: expected a positive number of seconds, got ${parsed.duration}`)
if (!(rate > 0)) fail(`--rate: expected a positive number of orders per second, got ${parsed.rate}`)

runDemo({ dir: parsed.dir, seconds, rate, seed: Date.now() % 1_000_000 }).pipe(
  Effect.tapErrorCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.sync(() => process.stderr.write(`demo failed: ${Cause.pretty(cause)}\n`))
  ),
  Effect.provide(loggerLayer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
