import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { findFreePorts } from "../stack/ports.ts"
import { endpointOf, isS3ProxyProcess, launchS3Proxy, type S3Endpoint, type S3ServerSettings, STACK_S3, stopS3Proxy } from "../stack/s3Server.ts"
import { sleep } from "./timing.ts"

/** The run's own S3 server (S3Proxy from Maven Central), which the run SIGKILLs and restarts on the same port and data. */
export interface ChaosS3 {
  readonly endpoint: S3Endpoint
  /** Where S3Proxy keeps its pid (for the run's watchdog). */
  readonly pidFile: string
  readonly pid: () => number
  /** SIGKILL, `downMs` away, relaunch; how long it was down and how long the start took. */
  readonly restart: (downMs: number) => Promise<{ readonly downMs: number; readonly startMs: number }>
  readonly stop: () => Promise<void>
}

export const startChaosS3 = async (dir: string): Promise<ChaosS3> => {
  mkdirSync(dir, { recursive: true })
  const [port] = await findFreePorts(1)
  const settings: S3ServerSettings = {
    port: port!,
    accessKeyId: "chaos-access-key",
    secretAccessKey: "chaos-secret-key",
    region: STACK_S3.region,
    bucket: "chaos-lake"
  }
  let pid = await launchS3Proxy(dir, settings)
  return {
    endpoint: endpointOf(settings),
    pidFile: join(dir, "s3proxy.pid"),
    pid: () => pid,
    restart: async (downMs) => {
      const killedAt = Date.now()
      if (isS3ProxyProcess(pid)) process.kill(pid, "SIGKILL")
      while (isS3ProxyProcess(pid)) await sleep(50)
      await sleep(Math.max(0, killedAt + downMs - Date.now()))
      const down = Date.now() - killedAt
      const starting = Date.now()
      pid = await launchS3Proxy(dir, settings)
      return { downMs: down, startMs: Date.now() - starting }
    },
    stop: async () => {
      await stopS3Proxy(pid)
    }
  }
}
