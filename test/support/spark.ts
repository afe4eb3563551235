import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { repoRoot } from "../../scripts/stack/paths.ts"
import {
  AWS_SDK_VERSION,
  DELTA_VERSION,
  HADOOP_VERSION,
  s3aClasspathDir,
  s3aJarsDir,
  SPARK_VERSION,
  sparkClasspathDir,
  sparkFetchCommand,
  sparkJarsDir
} from "../../scripts/stack/sparkJars.ts"
import { javaCommand } from "../../scripts/stack/tools.ts"

/**
 * Apache Spark + Delta Lake in local mode, as an outside reader of our table: one JVM running
 * test/support/spark/SparkSql.java, which answers one SQL statement per line with one JSON line.
 */

/** A value as SparkSql.java prints it: decimals as plain strings, timestamps ISO-8601 UTC, dates YYYY-MM-DD. */
export type SparkValue = string | number | boolean | null | ReadonlyArray<SparkValue> | { readonly [key: string]: SparkValue }

export interface SparkResult {
  readonly columns: ReadonlyArray<string>
  /** Spark's `DataType.simpleString()`: `bigint`, `decimal(10,2)`, `timestamp`, `date`, `string`, ... */
  readonly types: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<SparkValue>>
}

export interface SparkSession {
  /**
   * Runs one statement; calls are queued, one at a time. Line breaks become spaces (the protocol is one
   * statement per line). Rejects with Spark's error, or with the JVM's stderr tail if it died.
   */
  readonly sql: (statement: string) => Promise<SparkResult>
  /** Ends the session (stdin closed), kills the JVM if it has not exited after `closeTimeoutMs`, deletes its scratch dir. */
  readonly close: () => Promise<void>
  readonly pid: number
  /** What the JVM wrote to stderr so far (its last 64 kB; Spark's WARN lines and worse), secrets masked. */
  readonly stderr: () => string
}

/** An S3-compatible server for `s3a://bucket/key` paths (path-style requests, static credentials). */
export interface SparkS3Options {
  /** `http://host:port` or `https://host:port`; http turns TLS off. */
  readonly endpoint: string
  readonly accessKeyId: string
  /** Handed to the JVM in its environment, never on its command line; masked in errors. */
  readonly secretAccessKey: string
  /** Any region the server accepts; S3A signs with it and never asks AWS for one. */
  readonly region: string
}

export interface SparkOptions {
  /** Adds Spark's S3A connector (hadoop-aws + AWS SDK modules) pointed at this server. */
  readonly s3?: SparkS3Options
  /** Until the session is up; the first start on a machine compiles SparkSql.java and warms caches (~11 s). */
  readonly startTimeoutMs?: number
  /** Per statement; on expiry the JVM is killed, since its state is unknown. */
  readonly queryTimeoutMs?: number
  readonly closeTimeoutMs?: number
}

export class SparkError extends Error {
  override readonly name = "SparkError"
}

const program = join(repoRoot, "test", "support", "spark", "SparkSql.java")

/**
 * The --add-opens are what Spark's launcher passes (JavaModuleOptions); sun.util.calendar is needed to
 * collect DATE values. C1 only: a short-lived JVM on 2 cores spent less time compiling (a session with
 * a few Delta statements took ~40 s instead of ~70 s here, on a busy machine).
 * C1 only also shrinks the default code cache to 48 MiB, which a suite of a few hundred statements
 * filled in CI ("CodeCache is full. Compiler has been disabled."): hence the explicit size. The JVM
 * prints its own warnings and summaries on stdout, which is the protocol's; -Xlog and
 * DisplayVMOutputToStderr send them to stderr instead (sparkHarness.test.ts: "the JVM's own diagnostics").
 */
export const jvmDiagnosticsToStderr = [
  "-XX:+DisplayVMOutputToStderr",
  "-Xlog:disable",
  "-Xlog:all=warning:stderr:uptime,level,tags"
]

const jvmFlags = [
  "-Xmx1g",
  "-XX:TieredStopAtLevel=1",
  "-XX:ReservedCodeCacheSize=240m",
  ...jvmDiagnosticsToStderr,
  "-XX:+IgnoreUnrecognizedVMOptions",
  ...[
    "java.lang",
    "java.lang.invoke",
    "java.lang.reflect",
    "java.io",
    "java.net",
    "java.nio",
    "java.util",
    "java.util.concurrent",
    "java.util.concurrent.atomic",
    "jdk.internal.ref",
    "sun.nio.ch",
    "sun.nio.cs",
    "sun.security.action",
    "sun.util.calendar"
  ].map((pkg) => `--add-opens=java.base/${pkg}=ALL-UNNAMED`),
  "-Djdk.reflect.useDirectMethodHandle=false",
  "-Dio.netty.tryReflectionSetAccessible=true",
  "-Duser.timezone=UTC"
]

const jvmLogLine = /^\[\d+(\.\d+)?s\]\[\w+\s*\]/

/** What a suite needs besides Spark + Delta: `s3` for the S3A connector's jars. */
export interface SparkNeeds {
  readonly s3?: boolean
}

/** Why Spark cannot start here (jars not fetched), with the command that fixes it; null when it can. */
export const sparkJarsProblem = (needs: SparkNeeds = {}): string | null => {
  if (sparkClasspathDir() === null) {
    return `the Spark ${SPARK_VERSION} + Delta ${DELTA_VERSION} jars are not in ${sparkJarsDir()}; fetch them with \`${sparkFetchCommand}\``
  }
  if (needs.s3 === true && s3aClasspathDir() === null) {
    return `the S3A jars (hadoop-aws ${HADOOP_VERSION}, AWS SDK ${AWS_SDK_VERSION}) are not in ${s3aJarsDir()}; fetch them with \`${sparkFetchCommand}\``
  }
  return null
}

/**
 * Why a suite that needs Spark should be skipped here, or null when it should run. Under CI it always
 * runs, and fails in startSpark with the fetch command: a CI run that silently tested nothing would look green.
 */
export const sparkSkipReason = (needs: SparkNeeds = {}): string | null => (process.env["CI"] ? null : sparkJarsProblem(needs))

/**
 * Spark settings for S3A against one S3-compatible server (S3Proxy in the tests, MinIO, AWS S3).
 * Nothing reaches AWS: static credentials only (no environment, profile or instance-metadata lookup),
 * the region given (no region discovery), no bucket probe at start. Failures come quickly: a test
 * server that is down should fail a statement in seconds, not after S3A's minutes of retries.
 * Delta's log store for s3a stays its default, S3SingleDriverLogStore: right for one writer, and
 * reading needs nothing more. ETag change detection stays on, but an object without an ETag is read
 * rather than refused: S3Proxy's filesystem backend serves files put into its directory by hand with
 * none (S3A's default would fail with NoVersionAttributeException "Change detection policy requires ETag").
 */
export const s3aSettings = (s3: SparkS3Options): Record<string, string> => {
  const hadoop = (key: string, value: string): [string, string] => [`spark.hadoop.fs.s3a.${key}`, value]
  return Object.fromEntries([
    hadoop("endpoint", s3.endpoint),
    hadoop("endpoint.region", s3.region),
    hadoop("path.style.access", "true"),
    hadoop("connection.ssl.enabled", String(!s3.endpoint.startsWith("http://"))),
    hadoop("aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"),
    hadoop("access.key", s3.accessKeyId),
    hadoop("secret.key", s3.secretAccessKey),
    hadoop("bucket.probe", "0"),
    hadoop("change.detection.version.required", "false"),
    hadoop("attempts.maximum", "2"),
    hadoop("retry.limit", "2"),
    hadoop("retry.interval", "200ms"),
    hadoop("connection.establish.timeout", "15s"),
    hadoop("connection.timeout", "30s")
  ])
}

/**
 * JVM properties for the AWS SDK v2 under S3A. SDK 2.30+ adds CRC checksums to every PUT and wants them
 * on GETs by default; hadoop-aws 3.4.1 predates that, and S3-compatible servers differ in what they
 * accept: checksums only where S3 requires them, as the SDK hadoop-aws was built with did.
 */
const s3aJvmFlags = [
  "-Daws.requestChecksumCalculation=WHEN_REQUIRED",
  "-Daws.responseChecksumValidation=WHEN_REQUIRED",
  "-Daws.disableEc2Metadata=true"
]

const tailOf = (text: string, chars = 4000): string => (text.length > chars ? `...${text.slice(-chars)}` : text)

/** Starts a JVM with a Spark session (local[2], Delta extension and catalog, UTC) and resolves once it is up. */
export const startSpark = async (options: SparkOptions = {}): Promise<SparkSession> => {
  const startTimeoutMs = options.startTimeoutMs ?? 120_000
  const queryTimeoutMs = options.queryTimeoutMs ?? 60_000
  const closeTimeoutMs = options.closeTimeoutMs ?? 20_000
  const s3 = options.s3
  const problem = sparkJarsProblem({ s3: s3 !== undefined })
  if (problem !== null) throw new SparkError(problem)
  const classpath = [sparkJarsDir(), ...(s3 === undefined ? [] : [s3aJarsDir()])].map((dir) => join(dir, "*")).join(delimiter)
  const settings = s3 === undefined ? {} : s3aSettings(s3)
  /** Error text as shown to the test: never the secret, whatever Spark or the SDK put in it. */
  const mask = (text: string): string =>
    s3 === undefined || s3.secretAccessKey === "" ? text : text.split(s3.secretAccessKey).join("***")

  // Spark's local dir, warehouse, derby home and java.io.tmpdir: nothing lands in the repository.
  const scratch = mkdtempSync(join(tmpdir(), "spark-sql-"))
  const child: ChildProcessWithoutNullStreams = spawn(
    javaCommand(),
    [...jvmFlags, ...(s3 === undefined ? [] : s3aJvmFlags), `-Djava.io.tmpdir=${scratch}`, "-cp", classpath, program, scratch],
    // SPARK_LOCAL_IP: stay on loopback, and no warning about the hostname resolving to it.
    // SPARK_SQL_CONF: settings (credentials among them) where `ps` does not show them.
    {
      cwd: scratch,
      env: { ...process.env, SPARK_LOCAL_IP: "127.0.0.1", SPARK_SQL_CONF: JSON.stringify(settings) },
      stdio: ["pipe", "pipe", "pipe"]
    }
  )
  // A test process that exits without close() (a crash, a timeout) leaves no JVM and no scratch dir behind.
  const killOnExit = () => {
    child.kill("SIGKILL")
    rmSync(scratch, { recursive: true, force: true })
  }
  process.on("exit", killOnExit)

  const tail = (text: string): string => mask(tailOf(text))
  let stderr = ""
  let buffered = ""
  const lines: Array<string> = []
  let waiter: (() => void) | null = null
  let exit: string | null = null
  const wake = () => {
    const w = waiter
    waiter = null
    w?.()
  }
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    buffered += chunk
    const parts = buffered.split("\n")
    buffered = parts.pop()!
    for (const line of parts) {
      if (line.trim() === "") continue
      // A JVM log line ("[38.998s][warning][codecache] ...") that reached stdout despite -Xlog: a
      // diagnostic, kept with stderr's, not an answer.
      if (jvmLogLine.test(line)) stderr = (stderr + line + "\n").slice(-64_000)
      else lines.push(line)
    }
    wake()
  })
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-64_000)
  })
  child.stdin.on("error", () => undefined) // EPIPE when the JVM died first: reported through `exit`
  const exited = new Promise<void>((resolve) => {
    child.on("error", (error) => {
      exit = `could not start ${javaCommand()}: ${error.message}`
      wake()
      resolve()
    })
    child.on("exit", (code, signal) => {
      exit = `the Spark JVM exited (${signal ?? `code ${code}`})`
      wake()
      resolve()
    })
  })
  const cleanup = () => {
    process.off("exit", killOnExit)
    rmSync(scratch, { recursive: true, force: true })
  }

  /** The next protocol line, parsed; rejects when the JVM exits first or the time runs out. */
  const nextMessage = (what: string, timeoutMs: number): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiter = null
        child.kill("SIGKILL")
        reject(new SparkError(`${what}: no answer within ${timeoutMs} ms (JVM killed); stderr:\n${tail(stderr)}`))
      }, timeoutMs)
      const check = () => {
        const line = lines.shift()
        if (line !== undefined) {
          clearTimeout(timer)
          try {
            resolve(JSON.parse(line) as Record<string, unknown>)
          } catch {
            reject(new SparkError(`${what}: not a protocol line on stdout: ${line.slice(0, 500)}`))
          }
        } else if (exit !== null) {
          clearTimeout(timer)
          reject(new SparkError(`${what}: ${exit}; stderr:\n${tail(stderr)}`))
        } else {
          waiter = check
        }
      }
      check()
    })

  try {
    const ready = await nextMessage("starting Spark", startTimeoutMs)
    if (ready["ready"] !== true) throw new SparkError(`starting Spark: unexpected first line ${JSON.stringify(ready)}`)
  } catch (error) {
    child.kill("SIGKILL")
    await exited
    cleanup()
    throw error
  }

  let queue: Promise<unknown> = Promise.resolve()
  let closed = false
  const runStatement = async (statement: string): Promise<SparkResult> => {
    if (closed) throw new SparkError(`Spark session closed; cannot run: ${statement}`)
    if (exit !== null) throw new SparkError(`${exit}; cannot run: ${statement}\nstderr:\n${tail(stderr)}`)
    child.stdin.write(`${statement.replace(/\r?\n/g, " ")}\n`)
    const answer = await nextMessage(`Spark SQL \`${statement}\``, queryTimeoutMs)
    if (answer["ok"] !== true) throw new SparkError(mask(`Spark SQL failed: ${statement}\n${String(answer["error"])}`))
    return { columns: answer["columns"], types: answer["types"], rows: answer["rows"] } as SparkResult
  }

  return {
    pid: child.pid!,
    stderr: () => mask(stderr),
    sql: (statement) => {
      const result = queue.then(() => runStatement(statement))
      queue = result.catch(() => undefined)
      return result
    },
    close: async () => {
      if (closed) return exited
      closed = true
      await queue
      if (exit === null) {
        child.stdin.end()
        const timer = setTimeout(() => child.kill("SIGKILL"), closeTimeoutMs)
        await exited
        clearTimeout(timer)
      }
      cleanup()
    }
  }
}
