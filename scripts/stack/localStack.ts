import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import {
  brokerAnswers,
  brokerFiles,
  type BrokerPorts,
  isBrokerProcess,
  launchBroker,
  readPidFile,
  stopBrokerFromPidFile,
  waitForBroker
} from "./kafkaBroker.ts"
import { ensureKafkaJars, kafkaJarsReady } from "./kafkaJars.ts"
import { StackError, say } from "./log.ts"
import { stackStateDir } from "./paths.ts"
import { findFreePorts, isPortFree, isPortOpen } from "./ports.ts"
import { missingLocalKafkaTools } from "./tools.ts"

/**
 * The long-lived broker of `npm run stack:up` without Docker. Each broker has its own directory
 * `<state>/kafka-<port>/` (data, config, broker.log, kafka.pid, ports.json) that survives `down`,
 * so topics persist across restarts like the docker volume does.
 */
export const DEFAULT_KAFKA_PORTS: BrokerPorts = { port: 9092, controllerPort: 9093 }

const brokerDirs = (): string[] => {
  const state = stackStateDir()
  if (!existsSync(state)) return []
  return readdirSync(state).filter((name) => /^kafka-\d+$/.test(name)).map((name) => join(state, name))
}

const readPorts = (dir: string): BrokerPorts | null => {
  try {
    return JSON.parse(readFileSync(join(dir, "ports.json"), "utf8")) as BrokerPorts
  } catch {
    return null
  }
}

export interface RunningBroker {
  readonly pid: number
  readonly ports: BrokerPorts
  readonly dir: string
}

/** Brokers started by `up` that are still running (pid file alive and running kafka.Kafka). */
export const runningStackBrokers = (): RunningBroker[] =>
  brokerDirs().flatMap((dir) => {
    const pid = readPidFile(brokerFiles(dir).pidFile)
    const ports = readPorts(dir)
    return pid !== null && ports !== null && isBrokerProcess(pid) ? [{ pid, ports, dir }] : []
  })

/** 9092/9093 when free; otherwise free ports chosen by the OS, and we say so. */
const choosePorts = async (): Promise<BrokerPorts> => {
  const [portFree, controllerFree] = await Promise.all([
    isPortFree(DEFAULT_KAFKA_PORTS.port),
    isPortFree(DEFAULT_KAFKA_PORTS.controllerPort)
  ])
  if (portFree && controllerFree) return DEFAULT_KAFKA_PORTS
  const [a, b] = await findFreePorts(2)
  const ports = { port: portFree ? DEFAULT_KAFKA_PORTS.port : a!, controllerPort: controllerFree ? DEFAULT_KAFKA_PORTS.controllerPort : b! }
  say(
    `port ${portFree ? DEFAULT_KAFKA_PORTS.controllerPort : DEFAULT_KAFKA_PORTS.port} is taken by another process (not our broker); ` +
      `using KAFKA port ${ports.port}, controller port ${ports.controllerPort}`
  )
  return ports
}

/**
 * Why `ensureStackBroker` cannot work, or null. Checked before anything is changed, so a machine
 * without Java fails before its database is touched.
 */
export const stackBrokerProblem = (): string | null => {
  if (runningStackBrokers().length > 0) return null
  const missing = missingLocalKafkaTools({ needMaven: !kafkaJarsReady() })
  if (missing.length === 0) return null
  return `no Docker engine answers, and running Kafka locally needs:\n  - ${missing.join("\n  - ")}\n` +
    "Install those, or install Docker (with the compose plugin) and run `npm run stack:up` again."
}

/** Reuses our running broker if there is one, else starts one. Returns `host:port`. */
export const ensureStackBroker = async (): Promise<{ brokers: string; logFile: string }> => {
  for (const broker of runningStackBrokers()) {
    const brokers = `127.0.0.1:${broker.ports.port}`
    const { logFile } = brokerFiles(broker.dir)
    say(`reusing our Kafka broker (pid ${broker.pid}) at ${brokers}`)
    await waitForBroker(brokers, { pid: broker.pid, logFile })
    return { brokers, logFile }
  }
  const problem = stackBrokerProblem()
  if (problem !== null) throw new StackError(problem)
  const ports = await choosePorts()
  const dir = join(stackStateDir(), `kafka-${ports.port}`)
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "ports.json"), `${JSON.stringify(ports)}\n`)
  const files = brokerFiles(dir)
  await ensureKafkaJars()
  say(`starting Kafka broker on 127.0.0.1:${ports.port} (controller ${ports.controllerPort}), state in ${dir}`)
  const started = Date.now()
  const pid = await launchBroker(files, ports)
  say(`Kafka broker pid ${pid} ready in ${((Date.now() - started) / 1000).toFixed(1)} s; log: ${files.logFile}`)
  return { brokers: `127.0.0.1:${ports.port}`, logFile: files.logFile }
}

/** Stops every broker `up` started; returns a line per broker. Leaves data directories in place. */
export const stopStackBrokers = async (): Promise<string[]> => {
  const lines: string[] = []
  for (const dir of brokerDirs()) {
    const files = brokerFiles(dir)
    if (!existsSync(files.pidFile)) continue
    const pid = readPidFile(files.pidFile)
    const outcome = await stopBrokerFromPidFile(files.pidFile)
    const ports = readPorts(dir)
    const stillOpen = ports !== null && (await isPortOpen(ports.port) || await isPortOpen(ports.controllerPort))
    // A broker on fallback ports is never restarted on the same ports: drop its data instead of piling up dirs.
    const discard = ports?.port !== DEFAULT_KAFKA_PORTS.port
    if (discard) rmSync(dir, { recursive: true, force: true })
    lines.push(
      `Kafka broker pid ${pid ?? "?"} (${dir}): ${outcome}${discard ? ", directory removed" : ""}` +
        (stillOpen ? `; WARNING: something still listens on ${ports!.port}/${ports!.controllerPort}` : "")
    )
  }
  return lines
}

/** One line per broker `up` knows about, for `status`. */
export const describeStackBrokers = async (): Promise<{ lines: string[]; healthy: string | null }> => {
  const lines: string[] = []
  let healthy: string | null = null
  for (const broker of runningStackBrokers()) {
    const brokers = `127.0.0.1:${broker.ports.port}`
    const answers = await brokerAnswers(brokers)
    if (answers && healthy === null) healthy = brokers
    lines.push(`Kafka broker pid ${broker.pid} at ${brokers}: ${answers ? "answering" : "NOT answering"} (${broker.dir})`)
  }
  if (lines.length === 0) lines.push("no local Kafka broker started by stack:up is running")
  return { lines, healthy }
}
