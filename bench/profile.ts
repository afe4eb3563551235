/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went: by package or source
 * folder, and the hottest functions by self time.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly hitCount?: number
  readonly children?: ReadonlyArray<number>
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface ProfileSummary {
  readonly file: string
  readonly sampledSeconds: number
  /** Share of the wall time the main thread was busy (not idle), start-up included. */
  readonly busyShare: number
  /** CPU seconds spent loading modules (tsx transforms, ESM linking): start-up, left out of the shares below. */
  readonly moduleLoadingSeconds: number
  readonly byArea: ReadonlyArray<{ readonly area: string; readonly seconds: number; readonly share: number }>
  readonly topFunctions: ReadonlyArray<{ readonly fn: string; readonly where: string; readonly seconds: number; readonly share: number }>
}

const areaOf = (url: string, functionName: string): string => {
  if (url === "") {
    if (functionName === "(idle)") return "(idle)"
    if (functionName === "(garbage collector)") return "(garbage collector)"
    if (functionName === "(program)") return "(program: V8/native)"
    return `(native ${functionName})`
  }
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (modules !== null) return modules[1]!
  if (url.startsWith("node:")) return "node internals"
  const src = /\/(src\/[^/]+|bench|scripts)\//.exec(url)
  if (src !== null) return src[1]!
  return url.replace(/^file:\/\//, "")
}

const shortWhere = (url: string, line: number): string => {
  const trimmed = url.replace(/^file:\/\/.*?\/(node_modules|src|bench|scripts)\//, "$1/").replace(/^node:/, "node:")
  return url === "" ? "" : `${trimmed}:${line + 1}`
}

export const summariseProfile = (file: string, top = 15): ProfileSummary => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfMicros = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    // timeDeltas[i] is the time before sample i; attribute the following delta to the sample.
    const delta = profile.timeDeltas[i + 1] ?? 0
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + Math.max(0, delta))
  }
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0)
  // Samples under Node's module loader are start-up (tsx compiles each module on first import).
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const loading = new Map<number, boolean>()
  const isLoading = (id: number): boolean => {
    const known = loading.get(id)
    if (known !== undefined) return known
    const node = byId.get(id)
    const parent = parentOf.get(id)
    const result = node !== undefined &&
      (node.callFrame.url.startsWith("node:internal/modules/") || (parent !== undefined && isLoading(parent)))
    loading.set(id, result)
    return result
  }
  const areas = new Map<string, number>()
  const functions = new Map<string, { fn: string; where: string; micros: number }>()
  let idle = 0
  let moduleLoading = 0
  for (const [id, micros] of selfMicros) {
    const node = byId.get(id)
    if (node === undefined) continue
    const { functionName, url, lineNumber } = node.callFrame
    if (isLoading(id)) {
      moduleLoading += micros
      continue
    }
    const area = areaOf(url, functionName)
    if (area === "(idle)") idle += micros
    areas.set(area, (areas.get(area) ?? 0) + micros)
    const where = shortWhere(url, lineNumber)
    const key = `${functionName}@${where}`
    const entry = functions.get(key) ?? { fn: functionName || "(anonymous)", where, micros: 0 }
    entry.micros += micros
    functions.set(key, entry)
  }
  const busy = total - idle - moduleLoading
  const share = (micros: number) => (busy > 0 ? Math.round((micros / busy) * 1000) / 10 : 0)
  return {
    file,
    sampledSeconds: Math.round(total / 1e4) / 100,
    busyShare: total > 0 ? Math.round(((busy + moduleLoading) / total) * 1000) / 1000 : 0,
    moduleLoadingSeconds: Math.round(moduleLoading / 1e4) / 100,
    byArea: [...areas]
      .filter(([area]) => area !== "(idle)")
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([area, micros]) => ({ area, seconds: Math.round(micros / 1e4) / 100, share: share(micros) })),
    topFunctions: [...functions.values()]
      .filter((f) => f.fn !== "(idle)")
      .sort((a, b) => b.micros - a.micros)
      .slice(0, top)
      .map((f) => ({ fn: f.fn, where: f.where, seconds: Math.round(f.micros / 1e4) / 100, share: share(f.micros) }))
  }
}

/**
 * One summary per program directory under `dir` (see children.ts), for the thread that did the most
 * work: the main thread, not tsx's module-hooks worker. Programs that did not exit cleanly wrote none.
 */
export const summariseProfiles = (dir: string): Array<ProfileSummary & { readonly program: string }> => {
  let programs: Array<string>
  try {
    programs = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()
  } catch {
    return []
  }
  return programs.flatMap((program) => {
    const files = readdirSync(join(dir, program)).filter((n) => n.endsWith(".cpuprofile"))
    const summaries = files.map((n) => summariseProfile(join(dir, program, n)))
    const busiest = summaries.sort((a, b) => b.sampledSeconds * b.busyShare - a.sampledSeconds * a.busyShare)[0]
    return busiest === undefined ? [] : [{ ...busiest, program }]
  })
}
