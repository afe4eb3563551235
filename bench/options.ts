/** Command line and the three sizes of a run: smoke (CI, tens of seconds), quick (< 2 min), full. */
import { parseArgs } from "node:util"
import type { CaptureLoad, CaptureOptions } from "./scenarios/capture.ts"
import type { ScaleOptions } from "./scenarios/scale.ts"
import type { TablesOptions } from "./scenarios/tables.ts"
import type { TrickleOptions } from "./scenarios/trickle.ts"

export type Mode = "smoke" | "quick" | "full"
export const scenarioNames = ["backfill", "native", "steady", "ceiling", "reference", "trickle", "scale", "capture", "tables"] as const
export type ScenarioName = (typeof scenarioNames)[number]

export interface BenchOptions {
  readonly mode: Mode
  readonly outDir: string
  readonly profile: boolean
  readonly only: ReadonlySet<ScenarioName>
  /** STREAMING_BATCH_INTERVAL for our producer (seconds); null leaves the configuration's value. */
  readonly interval: number | null
  readonly backfill: { readonly rows: number; readonly days: number; readonly repetitions: number; readonly timeoutMs: number }
  /** kafkajs moves ~10-20k messages/s here: its two baselines use the first `kafkajsRows` orders (a rate is a rate). */
  readonly native: { readonly repetitions: number; readonly kafkajsRows: number }
  readonly steady: { readonly rates: ReadonlyArray<number>; readonly stepMs: number; readonly tickMs: number; readonly drainTimeoutMs: number }
  readonly ceiling: {
    readonly rates: ReadonlyArray<number>
    readonly stepMs: number
    readonly tickMs: number
    readonly drainTimeoutMs: number
    readonly growthTolerance: number
  }
  readonly reference: {
    readonly pollSeconds: number
    readonly rates: ReadonlyArray<number>
    readonly stepMs: number
    readonly tickMs: number
    readonly drainTimeoutMs: number
  }
  /** 50 orders/s for minutes: bounded live files and log, latency throughout (bench/scenarios/trickle.ts). */
  readonly trickle: TrickleOptions
  /** The lake on S3 against local disk, 1 against 3 consumers: backfill and latency (bench/scenarios/scale.ts). */
  readonly scale: ScaleOptions
  /** capture.mode poll against logical: latency with inserts and with updates, backfill against initial snapshot (bench/scenarios/capture.ts). */
  readonly capture: CaptureOptions
  /** The orders table alone against it with two more tables (`tables:`): backfill and latency (bench/scenarios/tables.ts). */
  readonly tables: TablesOptions
}

export const usage = `Usage: npm run bench -- [--quick | --smoke] [--profile] [--only LIST] [--rows N] [--repetitions N] [--interval S] [--out DIR] | --render FILE.json

Benchmarks the pipeline against a real PostgreSQL and Kafka (PG_URL + KAFKA_BROKERS when both are
set; otherwise the local PostgreSQL, database food_delivery_bench, and a throw-away Kafka broker).
Writes bench/results/<mode>-<time>.json and bench/results/<mode>.md.

  (default)    full run, about 45 minutes: 1,000,000-order backfill (x3), steady 200/1,000/5,000
               orders/s for 60 s each, ceiling steps of 20 s, the reference poller, native tools (x3),
               trickle 50 orders/s for 10 minutes (table retention 2 min), scale: the 1,000,000-order
               backfill with the lake local and on S3 x 1 and 3 consumers (x3), 1,000 orders/s for 60 s on each;
               capture: poll against logical, 1,000 orders/s for 60 s (inserts, and inserts + updates),
               the 1,000,000-order backfill against logical's initial snapshot (x3);
               tables: orders alone against orders + restaurants + order_items (logical), 100,000 rows
               each backfilled (x3), 600 changes/s for 60 s on orders alone, then spread over the three
  --quick      about five minutes: 100,000-order backfill, 8 s steady steps, 4 s ceiling steps,
               trickle for 2 minutes (table retention 15 s), scale with 100,000 orders and 15 s of latency
  --smoke      about two minutes, for CI: 10,000-order backfill, 3 s steps, trickle for 20 s, scale
               with 10,000 orders and 3 s of latency (--quick --smoke = --smoke)
  --profile    CPU-profile the producer and consumer (node --cpu-prof); summaries go in the results,
               the profiles under bench/results/profiles/
  --only LIST  comma-separated subset of: ${scenarioNames.join(", ")}
  --rows N     backfill size (backfill, scale, capture; tables: rows per table) instead of the mode's (e.g. --quick --only backfill --rows 1000000)
  --repetitions N  backfill runs (scale, capture, tables: rounds of their backfills) instead of the mode's
  --interval S our producer's STREAMING_BATCH_INTERVAL (default: the configuration's, 5 s; the
               producer also wakes on NOTIFY, so this is its fallback poll)
  --capture-runs LIST  the capture scenario's parts only, comma-separated: poll/inserts, logical/inserts,
               poll/mix, logical/mix, backfill (e.g. --only capture --capture-runs logical/mix)
  --out DIR    where to write the results (default bench/results)
  --render F   write the markdown of an existing JSON result F again (after a change to the report)

Native baselines need kcat (Debian: apt-get install -y kcat); without it they are reported as skipped.`

/**
 * Node options for the producer beyond its own (scripts/programs.ts, as `npm run producer` runs it:
 * a 192 MiB old-space limit since ab3b887). None: the capture scenario measures the program as shipped.
 */
const producerNodeArgs: Array<string> = []

const sizes = (mode: Mode) => {
  switch (mode) {
    case "smoke":
      return {
        backfill: { rows: 10_000, days: 3, repetitions: 1, timeoutMs: 90_000 },
        native: { repetitions: 1, kafkajsRows: 10_000 },
        steady: { rates: [200, 1000], stepMs: 3_000, tickMs: 20, drainTimeoutMs: 20_000 },
        ceiling: { rates: [2_000, 5_000], stepMs: 3_000, tickMs: 50, drainTimeoutMs: 30_000, growthTolerance: 0.05 },
        reference: { pollSeconds: 5, rates: [1000], stepMs: 6_000, tickMs: 20, drainTimeoutMs: 20_000 },
        trickle: { rate: 50, durationMs: 20_000, sampleMs: 2_000, tickMs: 20, retentionMinutes: 0.1, vacuumIntervalMinutes: 0.05, idleCompactionS: 3, drainTimeoutMs: 20_000, countRuns: 5 },
        scale: { rows: 10_000, days: 3, partitions: 3, consumers: [1, 3], repetitions: 1, timeoutMs: 90_000, pollMs: 50, latency: { rate: 1000, durationMs: 3_000, tickMs: 20, drainTimeoutMs: 20_000 } },
        capture: { rows: 5_000, days: 3, repetitions: 1, timeoutMs: 90_000, snapshotChunk: null, pollMs: 50, producerNodeArgs, loads: ["mix"] as Array<CaptureLoad>, latency: { rate: 1000, durationMs: 2_000, tickMs: 20, drainTimeoutMs: 20_000 } },
        tables: { rows: 2_000, days: 3, repetitions: 1, timeoutMs: 90_000, pollMs: 50, latency: { rate: 300, durationMs: 3_000, tickMs: 20, drainTimeoutMs: 20_000 } }
      }
    case "quick":
      return {
        backfill: { rows: 100_000, days: 7, repetitions: 1, timeoutMs: 180_000 },
        native: { repetitions: 1, kafkajsRows: 50_000 },
        steady: { rates: [200, 1000, 5000], stepMs: 8_000, tickMs: 20, drainTimeoutMs: 30_000 },
        ceiling: { rates: [5_000, 10_000, 20_000, 40_000], stepMs: 4_000, tickMs: 50, drainTimeoutMs: 30_000, growthTolerance: 0.05 },
        reference: { pollSeconds: 5, rates: [1000], stepMs: 8_000, tickMs: 20, drainTimeoutMs: 20_000 },
        // 15 s of retention: log cleanup waits for a checkpoint (every 100 versions, ~20 s here) older
        // than the retention, so the log's steady state shows from ~55 s on, before the last third.
        trickle: { rate: 50, durationMs: 120_000, sampleMs: 5_000, tickMs: 20, retentionMinutes: 0.25, vacuumIntervalMinutes: 0.25, idleCompactionS: 10, drainTimeoutMs: 30_000, countRuns: 5 },
        scale: { rows: 100_000, days: 7, partitions: 3, consumers: [1, 3], repetitions: 1, timeoutMs: 180_000, pollMs: 50, latency: { rate: 1000, durationMs: 15_000, tickMs: 20, drainTimeoutMs: 30_000 } },
        capture: { rows: 100_000, days: 7, repetitions: 1, timeoutMs: 180_000, snapshotChunk: null, pollMs: 50, producerNodeArgs, loads: ["inserts", "mix"] as Array<CaptureLoad>, latency: { rate: 1000, durationMs: 15_000, tickMs: 20, drainTimeoutMs: 30_000 } },
        tables: { rows: 50_000, days: 7, repetitions: 1, timeoutMs: 180_000, pollMs: 50, latency: { rate: 600, durationMs: 10_000, tickMs: 20, drainTimeoutMs: 30_000 } }
      }
    case "full":
      return {
        backfill: { rows: 1_000_000, days: 7, repetitions: 3, timeoutMs: 900_000 },
        native: { repetitions: 3, kafkajsRows: 200_000 },
        steady: { rates: [200, 1000, 5000], stepMs: 60_000, tickMs: 20, drainTimeoutMs: 60_000 },
        ceiling: {
          rates: [2_500, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 40_000, 60_000],
          stepMs: 20_000,
          tickMs: 50,
          drainTimeoutMs: 120_000,
          growthTolerance: 0.05
        },
        reference: { pollSeconds: 5, rates: [200, 1000, 5000], stepMs: 60_000, tickMs: 20, drainTimeoutMs: 30_000 },
        // 2 minutes of retention (default 60: the log would hold an hour of versions): steady from ~3 minutes on.
        trickle: { rate: 50, durationMs: 600_000, sampleMs: 5_000, tickMs: 20, retentionMinutes: 2, vacuumIntervalMinutes: 1, idleCompactionS: 10, drainTimeoutMs: 60_000, countRuns: 5 },
        scale: { rows: 1_000_000, days: 7, partitions: 3, consumers: [1, 3], repetitions: 3, timeoutMs: 900_000, pollMs: 50, latency: { rate: 1000, durationMs: 60_000, tickMs: 20, drainTimeoutMs: 60_000 } },
        capture: { rows: 1_000_000, days: 7, repetitions: 3, timeoutMs: 900_000, snapshotChunk: null, pollMs: 50, producerNodeArgs, loads: ["inserts", "mix"] as Array<CaptureLoad>, latency: { rate: 1000, durationMs: 60_000, tickMs: 20, drainTimeoutMs: 60_000 } },
        tables: { rows: 100_000, days: 7, repetitions: 3, timeoutMs: 600_000, pollMs: 50, latency: { rate: 600, durationMs: 60_000, tickMs: 20, drainTimeoutMs: 60_000 } }
      }
  }
}

export const parseOptions = (argv: ReadonlyArray<string>, defaultOutDir: string): BenchOptions | "help" | { readonly render: string; readonly outDir: string | undefined } => {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      only: { type: "string" },
      interval: { type: "string" },
      rows: { type: "string" },
      repetitions: { type: "string" },
      "capture-runs": { type: "string" },
      out: { type: "string" },
      render: { type: "string" },
      help: { type: "boolean", default: false }
    },
    strict: true,
    allowPositionals: false
  })
  if (values.help) return "help"
  if (values.render !== undefined) return { render: values.render, outDir: values.out }
  const mode: Mode = values.smoke ? "smoke" : values.quick ? "quick" : "full"
  const only = new Set<ScenarioName>()
  for (const name of (values.only ?? scenarioNames.join(",")).split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(scenarioNames as ReadonlyArray<string>).includes(name)) throw new Error(`--only: unknown scenario ${JSON.stringify(name)}; expected ${scenarioNames.join(", ")}`)
    only.add(name as ScenarioName)
  }
  const interval = values.interval === undefined ? null : Number(values.interval)
  if (interval !== null && !(interval > 0)) throw new Error(`--interval: expected a positive number of seconds, got ${values.interval}`)
  const positiveInt = (name: string, text: string | undefined) => {
    if (text === undefined) return undefined
    const n = Number(text)
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive whole number, got ${text}`)
    return n
  }
  const preset = sizes(mode)
  const rows = positiveInt("rows", values.rows)
  const repetitions = positiveInt("repetitions", values.repetitions)
  const backfill = {
    ...preset.backfill,
    ...(rows === undefined ? {} : { rows, timeoutMs: Math.max(preset.backfill.timeoutMs, rows) }),
    ...(repetitions === undefined ? {} : { repetitions })
  }
  const scale = {
    ...preset.scale,
    ...(rows === undefined ? {} : { rows, timeoutMs: Math.max(preset.scale.timeoutMs, rows) }),
    ...(repetitions === undefined ? {} : { repetitions })
  }
  const captureParts = ["poll/inserts", "logical/inserts", "poll/mix", "logical/mix", "backfill"]
  const captureRuns = values["capture-runs"]?.split(",").map((p) => p.trim()).filter(Boolean) ?? null
  for (const part of captureRuns ?? []) {
    if (!captureParts.includes(part)) throw new Error(`--capture-runs: unknown part ${JSON.stringify(part)}; expected ${captureParts.join(", ")}`)
  }
  const capture = {
    ...preset.capture,
    only: captureRuns,
    ...(captureRuns === null ? {} : { loads: (["inserts", "mix"] as Array<CaptureLoad>).filter((l) => captureRuns.some((p) => p.endsWith(`/${l}`))) }),
    ...(rows === undefined ? {} : { rows, timeoutMs: Math.max(preset.capture.timeoutMs, rows) }),
    ...(repetitions === undefined ? {} : { repetitions })
  }
  const tables = {
    ...preset.tables,
    ...(rows === undefined ? {} : { rows, timeoutMs: Math.max(preset.tables.timeoutMs, rows * 3) }),
    ...(repetitions === undefined ? {} : { repetitions })
  }
  return { mode, outDir: values.out ?? defaultOutDir, profile: values.profile, only, interval, ...preset, backfill, scale, capture, tables }
}
