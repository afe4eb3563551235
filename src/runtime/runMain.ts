import { NodeRuntime } from "@effect/platform-node"
import type { Effect } from "effect"

/** Repeats of a shutdown signal: already being handled. */
const ignoreRepeat = () => undefined

/**
 * `NodeRuntime.runMain` for the long-running programs, safe against a signal that arrives twice.
 * runMain interrupts the program on the first SIGINT/SIGTERM and removes its listeners, so a second
 * one would kill the process mid-batch with Node's default action. Under `npm run` a terminal's Ctrl-C
 * does exactly that: the terminal signals the whole process group and npm forwards its own copy to
 * the program. These listeners make the repeats no-ops (signal listeners do not keep Node alive), and
 * runMain still exits 0 once the batch in flight is written and state saved.
 */
export const runProgramMain = <E, A>(effect: Effect.Effect<A, E>): void => {
  process.on("SIGINT", ignoreRepeat)
  process.on("SIGTERM", ignoreRepeat)
  NodeRuntime.runMain(effect, { disableErrorReporting: true })
}
