/** Small statistics for the benchmark's figures. */

/** Nearest-rank percentile of already sorted values (p in 0..100). */
export const percentileSorted = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export interface Distribution {
  readonly count: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
  readonly mean: number
  readonly min: number
}

export const distribution = (values: ArrayLike<number>, digits = 0): Distribution => {
  const sorted = Float64Array.from(values).sort()
  const f = 10 ** digits
  const r = (v: number) => (Number.isFinite(v) ? Math.round(v * f) / f : NaN)
  let sum = 0
  for (const v of sorted) sum += v
  return {
    count: sorted.length,
    p50: r(percentileSorted(sorted, 50)),
    p95: r(percentileSorted(sorted, 95)),
    p99: r(percentileSorted(sorted, 99)),
    max: r(sorted.length > 0 ? sorted[sorted.length - 1]! : NaN),
    mean: r(sorted.length > 0 ? sum / sorted.length : NaN),
    min: r(sorted.length > 0 ? sorted[0]! : NaN)
  }
}

export const median = (values: ReadonlyArray<number>): number => {
  const finite = values.filter((v) => Number.isFinite(v))
  if (finite.length === 0) return NaN
  const sorted = [...finite].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Least-squares slope of y over x (per unit of x). */
export const slope = (points: ReadonlyArray<readonly [number, number]>): number => {
  if (points.length < 2) return NaN
  const n = points.length
  let sx = 0, sy = 0, sxx = 0, sxy = 0
  for (const [x, y] of points) {
    sx += x
    sy += y
    sxx += x * x
    sxy += x * y
  }
  const d = n * sxx - sx * sx
  return d === 0 ? NaN : (n * sxy - sx * sy) / d
}

export const ratio = (a: number, b: number, digits = 2): number | null =>
  Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? Math.round((a / b) * 10 ** digits) / 10 ** digits : null

export const perSecond = (count: number, ms: number): number => (ms > 0 ? Math.round((count * 1000) / ms) : NaN)

export const seconds = (ms: number, digits = 2): number => Math.round(ms / 10 ** (3 - digits)) / 10 ** digits

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns whether it did. */
export const waitUntil = async (check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await sleep(everyMs)
  }
  return await check()
}

export { round } from "./procStats.ts"
