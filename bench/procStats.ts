/**
 * Memory and CPU of a process from /proc (Linux). VmHWM is the kernel's own record of the peak
 * resident set, so the peak is exact whatever the sampling rate; VmRSS samples give the shape.
 */
import { readFileSync, writeFileSync } from "node:fs"

/** USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every Linux we run on). */
const ticksPerSecond = 100

export interface MemoryNow {
  readonly rssKiB: number
  readonly hwmKiB: number
}

export const readMemory = (pid: number): MemoryNow | null => {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8")
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN)
    return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") }
  } catch {
    return null
  }
}

/** User + system CPU seconds the process has used so far. */
export const readCpuSeconds = (pid: number): number | null => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ")
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond
  } catch {
    return null
  }
}

/** Resets VmHWM to the current RSS (Linux >= 4.0, needs permission on the process), so a later peak is per phase. */
export const resetPeak = (pid: number): boolean => {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5")
    return true
  } catch {
    return false
  }
}

/** Machine-wide busy and total CPU time, for the machine's utilisation over an interval. */
export const readMachineCpu = (): { busy: number; total: number } => {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!
  const values = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = (values[3] ?? 0) + (values[4] ?? 0)
  const total = values.reduce((a, b) => a + b, 0)
  return { busy: (total - idle) / ticksPerSecond, total: total / ticksPerSecond }
}

export interface UsageSample {
  readonly t: number
  readonly rssKiB: number
  readonly cpuSeconds: number
}

/**
 * Samples a process every `everyMs`: RSS and cumulative CPU. `summary(from, to)` gives the peak
 * RSS seen and the CPU used between two instants (as seconds and as a share of one core).
 */
export const sampleUsage = (pid: number, everyMs = 250) => {
  const samples: Array<UsageSample> = []
  const take = () => {
    const memory = readMemory(pid)
    const cpu = readCpuSeconds(pid)
    if (memory !== null && cpu !== null) samples.push({ t: Date.now(), rssKiB: memory.rssKiB, cpuSeconds: cpu })
  }
  take()
  const timer = setInterval(take, everyMs)
  timer.unref()
  return {
    samples,
    take,
    stop: () => {
      take()
      clearInterval(timer)
    },
    /** CPU seconds used and peak sampled RSS between `from` and `to` (ms since epoch). */
    between: (from: number, to: number) => {
      const inside = samples.filter((s) => s.t >= from && s.t <= to)
      const before = [...samples].reverse().find((s) => s.t <= from) ?? inside[0]
      const after = [...samples].reverse().find((s) => s.t <= to) ?? inside[inside.length - 1]
      const cpuSeconds = before !== undefined && after !== undefined ? after.cpuSeconds - before.cpuSeconds : 0
      const seconds = (to - from) / 1000
      return {
        cpuSeconds: round(cpuSeconds, 2),
        cpuCores: seconds > 0 ? round(cpuSeconds / seconds, 2) : 0,
        peakSampledRssMiB: round(Math.max(0, ...inside.map((s) => s.rssKiB)) / 1024, 1)
      }
    }
  }
}

export const round = (value: number, digits = 0): number => {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
