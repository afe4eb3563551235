import { Effect } from "effect"

/**
 * Fault injection for the delivery-guarantee tests and `npm run chaos`. With
 * `FOP_CRASH_AT=<point>` (or `<point>:<n>` for the n-th pass) the process SIGKILLs itself there:
 * no finalizers, no flush, exactly like a power cut between two steps. Unset, it costs one lookup.
 */
export type CrashPoint =
  | "producer.after-publish"
  | "consumer.after-lake-files"
  | "consumer.after-dead-letters"
  | "consumer.after-commit"
  | "compactor.after-merged-file"
  | "compactor.after-commit"
  | "cleanup.mid-log"
  | "cleanup.mid-vacuum"

const setting = process.env["FOP_CRASH_AT"]
const [target, nth] = setting === undefined ? [undefined, 1] : [setting.split(":")[0], Number(setting.split(":")[1] ?? "1")]
let passes = 0

export const crashPoint = (point: CrashPoint) =>
  target === point
    ? Effect.sync(() => {
      passes += 1
      if (passes >= nth) {
        process.stderr.write(`FOP_CRASH_AT: killing the process at ${point} (pass ${passes})\n`)
        process.kill(process.pid, "SIGKILL")
      }
    })
    : Effect.void
