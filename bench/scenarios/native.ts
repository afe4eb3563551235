/**
 * The machine's ceiling for moving the same rows through the same broker, with tools nobody here
 * wrote: psql's COPY of the seven-field JSON piped into `kcat -P` (librdkafka, idempotent, acks=all),
 * and `kcat -C -e` reading it back to /dev/null. Also the client library's own ceiling (kafkajs with
 * our producer's settings, and a no-op kafkajs consumer), to tell our code's cost from the library's.
 */
import { spawn } from "node:child_process"
import { commandExists } from "../../scripts/stack/proc.ts"
import { assertTableName } from "../../scripts/stack/sql.ts"
import { startProgram } from "../children.ts"
import { onCleanup } from "../cleanup.ts"
import { createTopic, deleteTopicsLater, topicHighWatermark } from "../kafka.ts"
import type { Roll } from "../pipeline.ts"
import type { Stack } from "../stack.ts"
import { median, perSecond, seconds } from "../stats.ts"

export interface Measured {
  readonly runs: ReadonlyArray<{ readonly seconds: number; readonly rowsPerS: number; readonly rows: number }>
  /** Medians over the runs. */
  readonly seconds: number
  readonly rowsPerS: number
}

export interface NativeResult {
  readonly rows: number
  /** The kafkajs baselines use the first this many rows. */
  readonly kafkajsRows: number
  readonly repetitions: number
  readonly kcat: string | null
  readonly skipped?: string
  /** psql COPY of the JSON to /dev/null: PostgreSQL's read + JSON encoding alone. */
  readonly pgCopy?: Measured
  /** psql COPY | kcat -P: capture and publish with native tools. */
  readonly copyToKcat?: Measured
  /** kcat -C -e to /dev/null: reading the topic back. */
  readonly kcatConsume?: Measured
  /** kafkajs with our producer's settings (rows already in memory; the read is timed apart). */
  readonly kafkajsPublish?: Measured & { readonly readSeconds: number }
  /** A kafkajs consumer group that does nothing with the messages. */
  readonly kafkajsConsume?: Measured
}

const jsonSql = (table: string) => `COPY (
  SELECT r.order_id, row_to_json(r)::text
  FROM (SELECT order_id, customer_name, restaurant_name, item, amount, order_status,
               to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created_at
        FROM "${assertTableName(table)}" ORDER BY created_at, order_id) r
) TO STDOUT`

/** Runs a bash pipeline in its own process group (so cleanup can stop all of it); resolves with exit code, stdout and ms. */
const timedShell = (script: string, env: Record<string, string>) =>
  new Promise<{ code: number | null; ms: number; stdout: string; stderr: string }>((resolve) => {
    const started = Date.now()
    const child = spawn("bash", ["-c", `set -o pipefail; ${script}`], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()))
    child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)))
    const undo = onCleanup(`stop shell pipeline ${child.pid}`, () => {
      try {
        if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    })
    child.on("close", (code) => {
      void undo()
      resolve({ code, ms: Date.now() - started, stdout, stderr })
    })
  })

const measured = (runs: Array<{ seconds: number; rowsPerS: number; rows: number }>): Measured => ({
  runs,
  seconds: median(runs.map((r) => r.seconds)),
  rowsPerS: median(runs.map((r) => r.rowsPerS))
})

const say = (line: string) => process.stderr.write(`[bench] ${line}\n`)

const runChild = async (name: string, env: Record<string, string>): Promise<Record<string, number>> => {
  let line: string | null = null
  const program = startProgram({
    name,
    script: "bench/kafkajsBaseline.ts",
    env,
    onLine: (text) => {
      if (text.startsWith("{\"baseline\"")) line = text
    }
  })
  const { code } = await program.exited
  await program.stop()
  if (code !== 0 || line === null) throw new Error(`${name} failed (exit ${code}): ${program.stderr().slice(-2000)}`)
  return JSON.parse(line) as Record<string, number>
}

/** `kafkajsRowsCap`: kafkajs is slow enough that its baselines use only the first rows (a rate is a rate). */
export const runNative = async (
  stack: Stack,
  roll: Roll,
  rows: number,
  repetitions: number,
  kafkajsRowsCap: number,
  kcat: string | null
): Promise<NativeResult> => {
  const kafkajsRows = Math.min(rows, kafkajsRowsCap)
  const pgCopy: Array<{ seconds: number; rowsPerS: number; rows: number }> = []
  const copyToKcat: Array<{ seconds: number; rowsPerS: number; rows: number }> = []
  const kcatConsume: Array<{ seconds: number; rowsPerS: number; rows: number }> = []
  const kafkajsPublish: Array<{ seconds: number; rowsPerS: number; rows: number; readSeconds: number }> = []
  const kafkajsConsume: Array<{ seconds: number; rowsPerS: number; rows: number }> = []
  const env = { BENCH_PG_URL: stack.pgUrl, BENCH_SQL: jsonSql(roll.table), BENCH_BROKERS: stack.kafkaBrokers, BENCH_TAB: "\t" }
  const haveKcat = commandExists("kcat")
  for (let rep = 1; rep <= repetitions; rep++) {
    const copy = await timedShell(`psql -d "$BENCH_PG_URL" -X -q -c "$BENCH_SQL" | wc -l`, env)
    if (copy.code !== 0) throw new Error(`psql COPY failed: ${copy.stderr}`)
    pgCopy.push({ rows: Number(copy.stdout.trim()), seconds: seconds(copy.ms), rowsPerS: perSecond(rows, copy.ms) })

    if (haveKcat) {
      const topic = `${roll.roll}_native_${rep}`
      deleteTopicsLater(stack.kafkaBrokers, [topic])
      await createTopic(stack.kafkaBrokers, topic)
      const produced = await timedShell(
        `psql -d "$BENCH_PG_URL" -X -q -c "$BENCH_SQL" | kcat -P -b "$BENCH_BROKERS" -t "$BENCH_TOPIC" -K "$BENCH_TAB" ` +
          `-X acks=all -X enable.idempotence=true -X compression.codec=none`,
        { ...env, BENCH_TOPIC: topic }
      )
      if (produced.code !== 0) throw new Error(`psql | kcat -P failed: ${produced.stderr}`)
      const high = await topicHighWatermark(stack.kafkaBrokers, topic)
      copyToKcat.push({ rows: high, seconds: seconds(produced.ms), rowsPerS: perSecond(high, produced.ms) })
      const consumed = await timedShell(`kcat -C -b "$BENCH_BROKERS" -t "$BENCH_TOPIC" -o beginning -e -q -f '%k\\t%s\\n' | wc -l`, {
        ...env,
        BENCH_TOPIC: topic
      })
      if (consumed.code !== 0) throw new Error(`kcat -C failed: ${consumed.stderr}`)
      const count = Number(consumed.stdout.trim())
      kcatConsume.push({ rows: count, seconds: seconds(consumed.ms), rowsPerS: perSecond(count, consumed.ms) })
    }

    const topic = `${roll.roll}_kafkajs_${rep}`
    deleteTopicsLater(stack.kafkaBrokers, [topic])
    await createTopic(stack.kafkaBrokers, topic)
    const childEnv = { PG_URL: stack.pgUrl, KAFKA_BROKERS: stack.kafkaBrokers, POSTGRES_TABLE: roll.table, KAFKA_TOPIC: topic, BENCH_ROWS: String(kafkajsRows) }
    const published = await runChild(`kafkajs-publish-${rep}`, { ...childEnv, BENCH_MODE: "produce" })
    kafkajsPublish.push({
      rows: published["rows"]!,
      seconds: seconds(published["publishMs"]!),
      rowsPerS: perSecond(published["rows"]!, published["publishMs"]!),
      readSeconds: seconds(published["readMs"]!)
    })
    const consumed = await runChild(`kafkajs-consume-${rep}`, { ...childEnv, BENCH_MODE: "consume" })
    kafkajsConsume.push({ rows: Math.min(consumed["rows"]!, kafkajsRows), seconds: seconds(consumed["consumeMs"]!), rowsPerS: perSecond(consumed["rows"]!, consumed["consumeMs"]!) })
    say(`native ${rep}/${repetitions}: COPY ${pgCopy.at(-1)!.rowsPerS}/s` +
      (haveKcat ? `, COPY|kcat -P ${copyToKcat.at(-1)!.rowsPerS}/s, kcat -C ${kcatConsume.at(-1)!.rowsPerS}/s` : "") +
      `, kafkajs publish ${kafkajsPublish.at(-1)!.rowsPerS}/s, consume ${kafkajsConsume.at(-1)!.rowsPerS}/s`)
  }
  return {
    rows,
    kafkajsRows,
    repetitions,
    kcat,
    ...(haveKcat ? {} : { skipped: "kcat is not installed (Debian: apt-get install -y kcat): the native Kafka figures are missing" }),
    pgCopy: measured(pgCopy),
    ...(haveKcat ? { copyToKcat: measured(copyToKcat), kcatConsume: measured(kcatConsume) } : {}),
    kafkajsPublish: { ...measured(kafkajsPublish), readSeconds: median(kafkajsPublish.map((r) => r.readSeconds)) },
    kafkajsConsume: measured(kafkajsConsume)
  }
}
