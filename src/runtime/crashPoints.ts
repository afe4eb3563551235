import { Effect } from "effect"

/**
 * Fault injection for the delivery-guarantee tests and `npm run chaos`. With
 * `FOP_CRASH_AT=<point>` (or `<point>:<n>` for the n-th pass) the process SIGKILLs itself there:
 * no finalizers, no flush, exactly like a power cut between two steps. With `FOP_PAUSE_AT` (same
 * form) it SIGSTOPs itself there instead, frozen mid-step until someone sends SIGCONT: a process
 * paused by the OS or cut off from the broker past its session timeout (the takeover test's zombie).
 * Unset, each costs one lookup.
 */
export type CrashPoint =
  | "producer.after-publish"
  | "consumer.after-lake-files"
  | "consumer.after-dead-letters"
  | "consumer.after-commit"
  | "consumer.after-history-commit"
  | "compactor.after-merged-file"
  | "compactor.after-commit"
  | "cleanup.mid-log"
  | "cleanup.mid-vacuum"

const parse = (setting: string | undefined) =>
  setting === undefined ? { target: undefined, nth: 1 } : { target: setting.split(":")[0], nth: Number(setting.split(":")[1] ?? "1") }

const crash = parse(process.env["FOP_CRASH_AT"])
const pause = parse(process.env["FOP_PAUSE_AT"])
let crashPasses = 0
let pausePasses = 0

export const crashPoint = (point: CrashPoint) =>
  crash.target === point
    ? Effect.sync(() => {
      crashPasses += 1
      if (crashPasses >= crash.nth) {
        process.stderr.write(`FOP_CRASH_AT: killing the process at ${point} (pass ${crashPasses})\n`)
        process.kill(process.pid, "SIGKILL")
      }
    })
    : pause.target === point
    ? Effect.sync(() => {
      pausePasses += 1
      // Once only: a continued process carries on as a zombie, it does not freeze again.
      if (pausePasses === pause.nth) {
        process.stdout.write(`${JSON.stringify({ message: "FOP_PAUSE_AT: stopping the process", point, pass: pausePasses })}\n`)
        process.kill(process.pid, "SIGSTOP")
        process.stdout.write(`${JSON.stringify({ message: "FOP_PAUSE_AT: continued", point })}\n`)
      }
    })
    : Effect.void
