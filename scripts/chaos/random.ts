/**
 * A seeded random source (mulberry32), so a chaos run that found something can be replayed with
 * the same `--seed`: the same kill moments, crash points, transaction shapes and garbage.
 * Timing still varies between machines, so a replay reproduces the plan, not every interleaving.
 */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Integer in [min, max], both inclusive. */
  int(min: number, max: number): number
  /** Real number in [min, max). */
  between(min: number, max: number): number
  chance(probability: number): boolean
  pick<T>(items: ReadonlyArray<T>): T
  /** An independent stream, so one activity drawing more numbers does not shift another's plan. */
  fork(label: string): Random
}

const hash = (text: string): number => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h >>> 0
}

export const seededRandom = (seed: number): Random => {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    between: (min, max) => min + next() * (max - min),
    chance: (probability) => next() < probability,
    pick: (items) => {
      if (items.length === 0) throw new Error("pick from an empty list")
      return items[Math.floor(next() * items.length)]!
    },
    fork: (label) => seededRandom(hash(`${seed}:${label}`))
  }
}
