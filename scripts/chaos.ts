/**
 * `npm run chaos`: a fault-injection run against the real stack (its own Kafka broker, the local
 * PostgreSQL or PG_URL). Orders are generated for a while — late commits, rollbacks, timestamp
 * ties — while the producer and the consumer are SIGKILLed at random moments and at crash points,
 * the broker is SIGKILLed and restarted, and garbage lands in the raw topic. Then everything drains
 * and PostgreSQL is compared with the lake, and the garbage with the dead-letter topic.
 *
 *   tsx scripts/chaos.ts [--duration S] [--kills N] [--seed N] [--quick] [--capture logical]
 *
 * With `--capture logical` the producer streams the table's changes through a replication slot; the
 * workload adds order lifecycles (updates, deletes), multi-statement transactions and one large
 * update, PostgreSQL is restarted mid-stream, and the lake's order_changes is checked too; a second
 * table (tables:, the restaurants) is changed alongside and its Delta table and history checked.
 *
 * Prints a summary table, then one JSON line; exits 1 if anything is missing, duplicated or
 * unexpected, a bad message is not in the DLQ, or a program did not stop cleanly.
 */
import { parseArgs } from "node:util"
import { fullChaos, logicalChaos, quickChaos } from "./chaos/options.ts"
import { formatSummary, reportLine } from "./chaos/report.ts"
import { runChaos } from "./chaos/runChaos.ts"
import { ChaosAborted } from "./chaos/timing.ts"
import { buildPrograms } from "./programs.ts"

const usage = `Usage: npm run chaos -- [--duration S] [--kills N] [--seed N] [--quick] [--spark] [--consumers N] [--lake local|s3]
                     [--capture poll|logical] [--pg-restarts N] [--pg-restart cluster|proxy]

  --duration S   seconds of order generation (default 60; --quick: 20)
  --kills N      SIGKILLs of each program at random moments (default 6; --quick: 2); crash points add more
  --seed N       replay a run's plan (kill moments, crash points, transactions, garbage); default: random
  --quick        a short run (the one \`npm test\` runs)
  --spark        at the end, read the table with Spark + delta-spark (jars: npx tsx scripts/stack.ts fetch)
                 and fail unless its count and sum equal PostgreSQL's
  --consumers N  consumers sharing the topic's 3 partitions through the consumer group (default 1);
                 the kills are spread over them, each kill also moves partitions between them
  --lake s3      the table on the run's own S3 server (S3Proxy 4.1.0 from Maven Central), which is
                 SIGKILLed and restarted mid-stream as well (default: local, a directory)
  --capture logical
                 the producer reads PostgreSQL's logical replication (CAPTURE_MODE=logical; wal_level
                 = logical is set on this machine's server if needed, the run's slot and publication
                 are dropped at the end). The workload adds order lifecycles (PLACED -> PREPARING ->
                 DELIVERED|CANCELLED, amount corrections, deletes), multi-statement transactions and
                 one large UPDATE; the insert rate is 40 % of poll mode's. The report adds the lake's
                 order_changes: every committed change once, the last one each order's final state.
                 A second table (tables:, <roll>_restaurants, partitioned by a timestamptz) is
                 inserted, updated and deleted alongside, with an ADD COLUMN mid-run: its Delta table
                 must equal PostgreSQL row by row, its history hold every committed change once.
  --pg-restarts N
                 PostgreSQL restarts mid-stream (default 1 with --capture logical, else 0)
  --pg-restart cluster|proxy
                 cluster (default): pg_ctlcluster stop, 2-5 s, start: the machine's cluster itself,
                 felt by all its clients; only as root or its owner (else skipped, with a line saying so).
                 proxy: the run's connections go through a proxy of its own, which cuts them and
                 their backends and refuses new ones for 2-5 s: other clients are left alone

PostgreSQL: PG_URL if set, else the local server through its superuser (database food_delivery_test).
Kafka: a broker of its own, started and removed by the run.`

const positiveNumber = (name: string, value: string | undefined, integer: boolean): number | undefined => {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n < (integer ? 0 : 1) || (integer && !Number.isInteger(n))) {
    process.stderr.write(`--${name}: expected ${integer ? "a non-negative integer" : "a number of seconds >= 1"}, got ${JSON.stringify(value)}\n\n${usage}\n`)
    process.exit(2)
  }
  return n
}

const parse = () => {
  try {
    return parseArgs({
      options: {
        duration: { type: "string" },
        kills: { type: "string" },
        seed: { type: "string" },
        quick: { type: "boolean", default: false },
        spark: { type: "boolean", default: false },
        consumers: { type: "string" },
        lake: { type: "string", default: "local" },
        capture: { type: "string", default: "poll" },
        "pg-restarts": { type: "string" },
        "pg-restart": { type: "string", default: "cluster" },
        help: { type: "boolean", default: false }
      },
      strict: true,
      allowPositionals: false
    }).values
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${usage}\n`)
    process.exit(2)
  }
}

const main = async (): Promise<number> => {
  const args = parse()
  if (args.help) {
    process.stdout.write(`${usage}\n`)
    return 0
  }
  buildPrograms()
  const seed = positiveNumber("seed", args.seed, true) ?? Math.floor(Math.random() * 2 ** 31)
  if (args.capture !== "poll" && args.capture !== "logical") {
    process.stderr.write(`--capture: expected poll or logical, got ${JSON.stringify(args.capture)}\n\n${usage}\n`)
    return 2
  }
  if (args["pg-restart"] !== "cluster" && args["pg-restart"] !== "proxy") {
    process.stderr.write(`--pg-restart: expected cluster or proxy, got ${JSON.stringify(args["pg-restart"])}\n\n${usage}\n`)
    return 2
  }
  const basePreset = args.quick ? quickChaos(seed) : fullChaos(seed)
  const preset = args.capture === "logical" ? logicalChaos(basePreset) : basePreset
  const pgRestarts = positiveNumber("pg-restarts", args["pg-restarts"], true)
  const durationS = positiveNumber("duration", args.duration, false)
  const kills = positiveNumber("kills", args.kills, true)
  const consumers = positiveNumber("consumers", args.consumers, true)
  if (consumers === 0) {
    process.stderr.write(`--consumers: expected 1 or more\n\n${usage}\n`)
    return 2
  }
  if (args.lake !== "local" && args.lake !== "s3") {
    process.stderr.write(`--lake: expected local or s3, got ${JSON.stringify(args.lake)}\n\n${usage}\n`)
    return 2
  }
  const options = {
    ...preset,
    ...(durationS === undefined ? {} : { durationS }),
    ...(kills === undefined ? {} : { kills }),
    ...(consumers === undefined ? {} : { consumers }),
    ...(pgRestarts === undefined ? {} : { pgRestarts }),
    pgRestartVia: args["pg-restart"] as "cluster" | "proxy",
    lake: args.lake as "local" | "s3",
    ...(args.spark ? { checkTable: (await import("../test/support/sparkTableCheck.ts")).sparkAgrees } : {})
  }

  // Ctrl-C: stop everything the run started (in its finally blocks), keep the state, exit 130.
  // A second Ctrl-C exits at once; the watchdog still stops the broker and the programs.
  const cancel = new AbortController()
  const onSignal = (signal: NodeJS.Signals) => {
    if (cancel.signal.aborted) process.exit(130)
    process.stderr.write(`\n[chaos] ${signal}: stopping everything (again to exit at once)\n`)
    cancel.abort(signal)
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)

  process.stderr.write(`[chaos] ${options.durationS} s of orders at ~${options.ordersPerSecond}/s, ${options.kills} kills of each program, ` +
    `${options.brokerRestarts} broker restart, ${options.pgRestarts} PostgreSQL restart (${options.pgRestartVia}), ` +
    `${options.garbage} bad messages, ${options.consumers} consumer(s), capture ${options.capture}, ` +
    `lake ${options.lake === "s3" ? `on S3 (${options.s3Restarts} S3 server restart)` : "local"}, seed ${seed}\n`)
  try {
    const report = await runChaos({ ...options, signal: cancel.signal })
    process.stdout.write(`${formatSummary(report)}\n${reportLine(report)}\n`)
    return report.ok ? 0 : 1
  } catch (error) {
    if (error instanceof ChaosAborted || cancel.signal.aborted) {
      process.stderr.write("[chaos] cancelled\n")
      return 130
    }
    process.stderr.write(`[chaos] the run could not be carried out: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`)
    return 1
  }
}

main().then((code) => process.exit(code))
