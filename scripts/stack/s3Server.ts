/**
 * A real S3 server without Docker: S3Proxy 4.1.0 from Maven Central (object-storage.md: the only
 * candidate here whose put-if-absent is atomic), objects as plain files under a base directory.
 *
 *   startLocalS3()     a throw-away server for tests (free port, temporary directory, watchdog)
 *   ensureStackS3()    the long-lived server of `npm run stack:up` (state dir, pid file, port 9000)
 *   stopStackS3()      what `stack:down` calls
 */
import { spawn } from "node:child_process"
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CreateBucketCommand, HeadBucketCommand, S3Client } from "@aws-sdk/client-s3"
import { StackError, say } from "./log.ts"
import { cacheRoot, stackStateDir } from "./paths.ts"
import { findFreePorts, isPortFree, isPortOpen } from "./ports.ts"
import { commandExists, commandLineOf, run, sleep } from "./proc.ts"
import { javaCommand, mavenCommand } from "./tools.ts"

export const S3PROXY_VERSION = "4.1.0"
const ARTIFACT = `org.gaul:s3proxy:${S3PROXY_VERSION}:jar:jar-with-dependencies`
const JAR_NAME = `s3proxy-${S3PROXY_VERSION}-jar-with-dependencies.jar`

/** The credentials, region and bucket of the stack's S3 server; docker-compose.yml's MinIO uses the same. */
export const STACK_S3 = {
  accessKeyId: "food-orders",
  secretAccessKey: "food-orders-secret",
  region: "us-east-1",
  bucket: "food-orders-lake",
  port: 9000
} as const

export const s3ProxyJar = (): string => join(cacheRoot(), `s3proxy-${S3PROXY_VERSION}`, JAR_NAME)

export const s3ProxyJarReady = (): boolean => existsSync(s3ProxyJar())

/** The fat jar (55 MB), fetched with Maven the first time; renamed into place only when complete. */
export const ensureS3ProxyJar = async (): Promise<string> => {
  const jar = s3ProxyJar()
  if (s3ProxyJarReady()) return jar
  if (!commandExists(mavenCommand())) {
    throw new StackError("cannot fetch the S3Proxy jar: mvn is missing (Debian/Ubuntu: sudo apt-get install -y maven)")
  }
  const home = join(cacheRoot(), `s3proxy-${S3PROXY_VERSION}`)
  const partial = join(home, `partial-${process.pid}`)
  mkdirSync(partial, { recursive: true })
  say(`fetching S3Proxy ${S3PROXY_VERSION} from Maven Central into ${home} (first time only)`)
  const started = Date.now()
  const result = await run(mavenCommand(), [
    "-B",
    "-q",
    "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
    `-Dartifact=${ARTIFACT}`,
    `-DoutputDirectory=${partial}`
  ], { cwd: home })
  if (result.code !== 0 || !existsSync(join(partial, JAR_NAME))) {
    rmSync(partial, { recursive: true, force: true })
    const output = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-30).join("\n")
    throw new StackError(`mvn could not fetch ${ARTIFACT} (exit ${result.code}). Is Maven Central reachable?\n${output}`)
  }
  renameSync(join(partial, JAR_NAME), jar)
  rmSync(partial, { recursive: true, force: true })
  say(`fetched S3Proxy in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return jar
}

export interface S3ServerSettings {
  readonly port: number
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly region: string
  readonly bucket: string
  /**
   * An https endpoint beside the http one (which the stack keeps for its own readiness checks): a
   * PKCS#12 keystore with the server's key and certificate, and the name clients use.
   */
  readonly tls?: { readonly port: number; readonly host: string; readonly keystore: string; readonly keystorePassword: string }
}

/** What a client needs: `endpoint` is `http://127.0.0.1:<port>` (path-style addressing). */
export interface S3Endpoint {
  readonly endpoint: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly region: string
  readonly bucket: string
}

export const endpointOf = (settings: S3ServerSettings): S3Endpoint => ({
  endpoint: `http://127.0.0.1:${settings.port}`,
  accessKeyId: settings.accessKeyId,
  secretAccessKey: settings.secretAccessKey,
  region: settings.region,
  bucket: settings.bucket
})

const files = (dir: string) => ({
  dir,
  data: join(dir, "data"),
  properties: join(dir, "s3proxy.conf"),
  logFile: join(dir, "s3proxy.log"),
  pidFile: join(dir, "s3proxy.pid"),
  settings: join(dir, "settings.json")
})

/** A pid is our server only if it is alive and runs the S3Proxy jar: pids get reused. */
export const isS3ProxyProcess = (pid: number): boolean => commandLineOf(pid)?.includes(JAR_NAME) ?? false

const readPid = (pidFile: string): number | null => {
  try {
    const pid = Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch {
    return null
  }
}

const logTail = (logFile: string): string => {
  try {
    return readFileSync(logFile, "utf8").trimEnd().split("\n").slice(-30).join("\n")
  } catch {
    return "(no log)"
  }
}

const clientFor = (s3: S3Endpoint) =>
  new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    maxAttempts: 1
  })

/** Any HTTP answer means the server listens; a signed HeadBucket then checks the keys too. */
export const s3Answers = async (s3: S3Endpoint): Promise<boolean> => {
  try {
    const response = await fetch(s3.endpoint, { signal: AbortSignal.timeout(2000) })
    await response.body?.cancel()
    return true
  } catch {
    return false
  }
}

/** Creates the bucket unless it exists (idempotent: a restarted server keeps its buckets). */
export const ensureBucket = async (s3: S3Endpoint): Promise<void> => {
  const client = clientFor(s3)
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: s3.bucket }))
      return
    } catch {
      // missing: create it below
    }
    await client.send(new CreateBucketCommand({ Bucket: s3.bucket })).catch((error: { name?: string }) => {
      if (error.name !== "BucketAlreadyOwnedByYou" && error.name !== "BucketAlreadyExists") throw error
    })
  } finally {
    client.destroy()
  }
}

const properties = (settings: S3ServerSettings, dataDir: string): string =>
  [
    "# Generated by scripts/stack/s3Server.ts",
    `s3proxy.endpoint=http://127.0.0.1:${settings.port}`,
    ...(settings.tls === undefined ? [] : [
      `s3proxy.secure-endpoint=https://127.0.0.1:${settings.tls.port}`,
      `s3proxy.keystore-path=${settings.tls.keystore}`,
      `s3proxy.keystore-password=${settings.tls.keystorePassword}`
    ]),
    "s3proxy.authorization=aws-v2-or-v4",
    `s3proxy.identity=${settings.accessKeyId}`,
    `s3proxy.credential=${settings.secretAccessKey}`,
    // 4.x still reads the jclouds key; objects are plain files at <data>/<bucket>/<key>.
    "jclouds.provider=filesystem",
    `jclouds.filesystem.basedir=${dataDir}`,
    ""
  ].join("\n")

/**
 * Starts S3Proxy detached in `dir` (config, data, log, pid file), waits until it answers and creates
 * the bucket. On failure the process is stopped and the error carries the log's tail.
 */
export const launchS3Proxy = async (dir: string, settings: S3ServerSettings, options: { readonly timeoutMs?: number } = {}): Promise<number> => {
  if (!commandExists(javaCommand())) throw new StackError("cannot start S3Proxy: java 17+ is missing")
  const jar = await ensureS3ProxyJar()
  const f = files(dir)
  mkdirSync(f.data, { recursive: true })
  writeFileSync(f.properties, properties(settings, f.data))
  writeFileSync(f.settings, `${JSON.stringify(settings)}\n`)
  const log = openSync(f.logFile, "a")
  let pid: number
  try {
    const child = spawn(javaCommand(), [
      "-Xmx256m",
      "-XX:+UseSerialGC",
      "-XX:TieredStopAtLevel=1",
      "-Djava.awt.headless=true",
      "-jar",
      jar,
      "--properties",
      f.properties
    ], { cwd: dir, detached: true, stdio: ["ignore", log, log], env: { ...process.env, LOG_LEVEL: "warn" } })
    child.on("error", (error) => say(`S3Proxy process error: ${error.message}`))
    if (child.pid === undefined) throw new StackError(`could not start ${javaCommand()}`)
    child.unref()
    pid = child.pid
    writeFileSync(f.pidFile, `${pid}\n`)
  } finally {
    closeSync(log)
  }
  const s3 = endpointOf(settings)
  const deadline = Date.now() + (options.timeoutMs ?? 60_000)
  try {
    for (;;) {
      if (!isS3ProxyProcess(pid)) throw new StackError(`S3Proxy (pid ${pid}) exited during startup\n--- ${f.logFile} ---\n${logTail(f.logFile)}`)
      if (await s3Answers(s3)) break
      if (Date.now() > deadline) throw new StackError(`S3Proxy at ${s3.endpoint} did not answer in time\n--- ${f.logFile} ---\n${logTail(f.logFile)}`)
      await sleep(150)
    }
    await ensureBucket(s3)
  } catch (error) {
    await stopS3Proxy(pid, { timeoutMs: 5_000 })
    rmSync(f.pidFile, { force: true })
    throw error
  }
  return pid
}

/** SIGTERM, then SIGKILL after `timeoutMs`. Only ever signals an S3Proxy process. */
export const stopS3Proxy = async (pid: number, options: { readonly timeoutMs?: number } = {}): Promise<"stopped" | "killed" | "not-running"> => {
  if (!isS3ProxyProcess(pid)) return "not-running"
  try {
    process.kill(pid, "SIGTERM")
  } catch {
    return "not-running"
  }
  const deadline = Date.now() + (options.timeoutMs ?? 15_000)
  while (Date.now() < deadline) {
    if (!isS3ProxyProcess(pid)) return "stopped"
    await sleep(100)
  }
  try {
    process.kill(pid, "SIGKILL")
  } catch {
    // exited meanwhile
  }
  while (isS3ProxyProcess(pid)) await sleep(100)
  return "killed"
}

/** If the owner dies without stop() (a killed test run), a detached shell stops the server and removes its directory. */
const spawnWatchdog = (ownerPid: number, serverPid: number, dir: string): void => {
  const script = `
owner=$1 server=$2 dir=$3
while kill -0 "$owner" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 2; done
if kill -0 "$server" 2>/dev/null && grep -qa "s3proxy" "/proc/$server/cmdline" 2>/dev/null; then
  kill -TERM "$server"; i=0
  while kill -0 "$server" 2>/dev/null && [ $i -lt 10 ]; do sleep 1; i=$((i+1)); done
  kill -KILL "$server" 2>/dev/null
  rm -rf "$dir"
fi`
  const child = spawn("sh", ["-c", script, "s3proxy-watchdog", String(ownerPid), String(serverPid), dir], { detached: true, stdio: "ignore" })
  child.on("error", () => undefined)
  child.unref()
}

export interface LocalS3 extends S3Endpoint {
  readonly port: number
  /** `https://<host>:<port>` when started with `tls`. */
  readonly secureEndpoint?: string
  readonly pid: number
  /** Temporary directory with the objects (`data/<bucket>/<key>`), config and log; removed by stop(). */
  readonly dir: string
  readonly logFile: string
  /** Milliseconds from spawn to answering with the bucket created. */
  readonly startedInMs: number
  /** SIGTERM (SIGKILL after 15 s) and removes the directory. Idempotent. */
  stop(): Promise<void>
}

/** A throw-away S3Proxy for tests: a free port, a fresh temporary directory, stopped by stop() or by a watchdog. */
export const startLocalS3 = async (options: Partial<Omit<S3ServerSettings, "port">> & { readonly port?: number } = {}): Promise<LocalS3> => {
  for (let attempt = 1; ; attempt++) {
    const [free, freeTls] = await findFreePorts(2)
    const settings: S3ServerSettings = {
      port: options.port ?? free!,
      accessKeyId: options.accessKeyId ?? "test-access-key",
      secretAccessKey: options.secretAccessKey ?? "test-secret-key",
      region: options.region ?? STACK_S3.region,
      bucket: options.bucket ?? "lake-test",
      // Port 0 in the options: a free one.
      ...(options.tls === undefined ? {} : { tls: { ...options.tls, port: options.tls.port === 0 ? freeTls! : options.tls.port } })
    }
    const dir = mkdtempSync(join(tmpdir(), "food-orders-s3-"))
    const started = Date.now()
    try {
      const pid = await launchS3Proxy(dir, settings)
      const startedInMs = Date.now() - started
      spawnWatchdog(process.pid, pid, dir)
      const onExit = () => {
        if (isS3ProxyProcess(pid)) process.kill(pid, "SIGKILL")
        rmSync(dir, { recursive: true, force: true })
      }
      process.once("exit", onExit)
      let stopped: Promise<void> | undefined
      return {
        ...endpointOf(settings),
        ...(settings.tls === undefined ? {} : { secureEndpoint: `https://${settings.tls.host}:${settings.tls.port}` }),
        port: settings.port,
        pid,
        dir,
        logFile: files(dir).logFile,
        startedInMs,
        stop: () =>
          (stopped ??= (async () => {
            process.removeListener("exit", onExit)
            await stopS3Proxy(pid)
            rmSync(dir, { recursive: true, force: true })
          })())
      }
    } catch (error) {
      rmSync(dir, { recursive: true, force: true })
      // The free port may have been taken before S3Proxy bound it: one more try on another.
      if (attempt >= 2 || options.port !== undefined) throw error
      say(`S3Proxy did not start on port ${settings.port}; retrying on another port`)
    }
  }
}

const stackDir = (): string => join(stackStateDir(), "s3proxy")

const readSettings = (dir: string): S3ServerSettings | null => {
  try {
    return JSON.parse(readFileSync(files(dir).settings, "utf8")) as S3ServerSettings
  } catch {
    return null
  }
}

/** The stack's S3Proxy if it runs: its pid and endpoint. */
export const runningStackS3 = (): { readonly pid: number; readonly s3: S3Endpoint; readonly dir: string } | null => {
  const dir = stackDir()
  const pid = readPid(files(dir).pidFile)
  const settings = readSettings(dir)
  return pid !== null && settings !== null && isS3ProxyProcess(pid) ? { pid, s3: endpointOf(settings), dir } : null
}

/**
 * Reuses the stack's running S3Proxy or starts one on 9000 (or a free port when 9000 is taken),
 * objects under `<state>/s3proxy/data` so they survive `down`/`up` like the MinIO volume does.
 */
export const ensureStackS3 = async (): Promise<S3Endpoint & { readonly logFile: string }> => {
  const running = runningStackS3()
  if (running !== null) {
    say(`reusing our S3Proxy (pid ${running.pid}) at ${running.s3.endpoint}`)
    await ensureBucket(running.s3)
    return { ...running.s3, logFile: files(running.dir).logFile }
  }
  const port = (await isPortFree(STACK_S3.port)) ? STACK_S3.port : (await findFreePorts(1))[0]!
  if (port !== STACK_S3.port) say(`port ${STACK_S3.port} is taken by another process; S3Proxy uses ${port}`)
  const settings: S3ServerSettings = { ...STACK_S3, port }
  const dir = stackDir()
  mkdirSync(dir, { recursive: true })
  const started = Date.now()
  const pid = await launchS3Proxy(dir, settings)
  say(`S3Proxy ${S3PROXY_VERSION} pid ${pid} ready at ${endpointOf(settings).endpoint} in ${((Date.now() - started) / 1000).toFixed(1)} s; objects in ${files(dir).data}`)
  return { ...endpointOf(settings), logFile: files(dir).logFile }
}

/** Stops the stack's S3Proxy; keeps its objects. */
export const stopStackS3 = async (): Promise<string | null> => {
  const f = files(stackDir())
  if (!existsSync(f.pidFile)) return null
  const pid = readPid(f.pidFile)
  const outcome = pid === null ? "not-running" : await stopS3Proxy(pid)
  rmSync(f.pidFile, { force: true })
  return `S3Proxy pid ${pid ?? "?"}: ${outcome} (objects kept in ${f.data})`
}

/** One line for `status`, and whether it answers. */
export const describeStackS3 = async (): Promise<{ readonly line: string; readonly healthy: boolean }> => {
  const running = runningStackS3()
  if (running === null) return { line: "no S3Proxy started by stack:up is running", healthy: false }
  const answers = await s3Answers(running.s3) && (await isPortOpen(Number(new URL(running.s3.endpoint).port)))
  return { line: `S3Proxy pid ${running.pid} at ${running.s3.endpoint} (bucket ${running.s3.bucket}): ${answers ? "answering" : "NOT answering"}`, healthy: answers }
}

/** The AWS_* + LAKE_BUCKET lines `stack:up` prints, the same names the pipeline and the tests read. */
export const s3EnvOf = (s3: S3Endpoint): Record<string, string> => ({
  AWS_ENDPOINT_URL_S3: s3.endpoint,
  AWS_ACCESS_KEY_ID: s3.accessKeyId,
  AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
  AWS_REGION: s3.region,
  LAKE_BUCKET: s3.bucket
})
