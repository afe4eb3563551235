import { appendFileSync, copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  type BrokerFiles,
  brokerFiles,
  type BrokerPorts,
  formatStorage,
  isBrokerProcess,
  readPidFile,
  spawnBroker,
  stopBroker,
  waitForBroker,
  warmUpBroker,
  writeBrokerConfig
} from "../stack/kafkaBroker.ts"
import { ensureKafkaJars, kafkaJarsReady } from "../stack/kafkaJars.ts"
import { StackError } from "../stack/log.ts"
import { findFreePorts } from "../stack/ports.ts"
import { missingLocalKafkaTools } from "../stack/tools.ts"
import { sleep } from "./timing.ts"

/**
 * The stack's broker settings plus one change. After a SIGKILL the restarted broker cannot register
 * with its (co-located) controller until the dead incarnation's registration expires
 * (DuplicateBrokerRegistrationException every 2 s for broker.session.timeout.ms, 9 s by default):
 * a shorter session keeps the outage about the crash and the log recovery, not that wait.
 */
const chaosOverrides = ["# chaos: see scripts/chaos/broker.ts", "broker.heartbeat.interval.ms=500", "broker.session.timeout.ms=3000", ""].join("\n")

/** launchBroker of scripts/stack/kafkaBroker.ts, with chaosOverrides appended to server.properties. */
const launch = async (files: BrokerFiles, ports: BrokerPorts, timeoutMs: number): Promise<number> => {
  const missing = missingLocalKafkaTools({ needMaven: !kafkaJarsReady() })
  if (missing.length > 0) throw new StackError(`cannot start a local Kafka broker; missing:\n  - ${missing.join("\n  - ")}`)
  const libDir = await ensureKafkaJars()
  writeBrokerConfig(files, ports)
  appendFileSync(files.serverProperties, chaosOverrides)
  await formatStorage(libDir, files)
  const pid = spawnBroker(libDir, files)
  try {
    await waitForBroker(`127.0.0.1:${ports.port}`, { pid, logFile: files.logFile, timeoutMs })
    await warmUpBroker(`127.0.0.1:${ports.port}`)
  } catch (error) {
    await stopBroker(pid, { timeoutMs: 5_000 })
    rmSync(files.pidFile, { force: true })
    throw error
  }
  return pid
}

/**
 * The run's own single-node broker. The shared stack's broker (or the test harness's) cannot be
 * restarted under other people's feet, so chaos starts one on free ports in a temporary directory
 * and restarts it with the same files, ports and data: clients see the same address go away and
 * come back, with every acknowledged record still there.
 */
export interface ChaosBroker {
  readonly brokers: string
  readonly dir: string
  readonly files: BrokerFiles
  /** The current broker process (changes on restart), null while it is down. */
  pid(): number | null
  /**
   * SIGKILL (no controlled shutdown, no flush beyond what the OS already has), stay down for
   * `downMs`, launch again. Resolves once the broker answers again; returns how long it was away.
   */
  restart(downMs: number): Promise<{ downMs: number; startMs: number }>
  /** Stops the broker (SIGTERM, then SIGKILL) and removes its directory, keeping broker.log in `keepLogIn` if given. */
  stop(keepLogIn?: string): Promise<void>
}

export const startChaosBroker = async (): Promise<ChaosBroker> => {
  const dir = mkdtempSync(join(tmpdir(), "fop-chaos-kafka-"))
  const files = brokerFiles(dir)
  let current: number | null = null
  try {
    // A port chosen free could be taken before the broker binds it; one retry covers that race.
    let ports: BrokerPorts | undefined
    for (let attempt = 1; ports === undefined; attempt++) {
      const [port, controllerPort] = await findFreePorts(2)
      const candidate = { port: port!, controllerPort: controllerPort! }
      try {
        current = await launch(files, candidate, 90_000)
        ports = candidate
      } catch (error) {
        if (attempt >= 2 || !/Address already in use|BindException/.test(String(error))) throw error
      }
    }
    const brokers = `127.0.0.1:${ports.port}`
    const fixedPorts = ports
    let stopped = false
    return {
      brokers,
      dir,
      files,
      pid: () => current,
      restart: async (downMs) => {
        const pid = current
        current = null
        if (pid !== null && isBrokerProcess(pid)) {
          process.kill(pid, "SIGKILL")
          while (isBrokerProcess(pid)) await sleep(50)
        }
        const down = Date.now()
        await sleep(downMs)
        const starting = Date.now()
        // Same files and ports: the same config is written again, the format is skipped (meta.properties
        // exists) and the broker recovers its log directory after the unclean stop.
        current = await launch(files, fixedPorts, 120_000)
        return { downMs: starting - down, startMs: Date.now() - starting }
      },
      stop: async (keepLogIn) => {
        if (stopped) return
        stopped = true
        const pid = current ?? readPidFile(files.pidFile)
        current = null
        if (pid !== null) await stopBroker(pid, { timeoutMs: 20_000 })
        if (keepLogIn !== undefined) {
          try {
            copyFileSync(files.logFile, join(keepLogIn, "broker.log"))
          } catch {
            // no log yet: nothing to keep
          }
        }
        rmSync(dir, { recursive: true, force: true })
      }
    }
  } catch (error) {
    if (current !== null) await stopBroker(current, { timeoutMs: 5_000 })
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
}
