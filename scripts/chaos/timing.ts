/** Waiting that a run's cancellation (Ctrl-C, a failure elsewhere) can cut short. */

/** Thrown where a cancelled run stops early; the finally blocks then clean up. */
export class ChaosAborted extends Error {
  override readonly name = "ChaosAborted"
}

export const throwIfAborted = (signal: AbortSignal | undefined): void => {
  if (signal?.aborted) throw new ChaosAborted(String(signal.reason ?? "aborted"))
}

/**
 * Sleeps `ms`, or less if `signal` fires; resolves either way (true when the full time passed).
 * Loops use it as "wait for the next step, or stop now".
 */
export const sleep = (ms: number, signal?: AbortSignal): Promise<boolean> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve(false)
    const onAbort = () => {
      clearTimeout(timer)
      resolve(false)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort)
      resolve(true)
    }, Math.max(0, ms))
    signal?.addEventListener("abort", onAbort, { once: true })
  })

/** Like sleep, but a fired signal is an error: for waits that make no sense to cut short quietly. */
export const sleepOrAbort = async (ms: number, signal?: AbortSignal): Promise<void> => {
  await sleep(ms, signal)
  throwIfAborted(signal)
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
