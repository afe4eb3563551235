import { Duration, Schedule } from "effect"

/**
 * A transient failure inside one step (a dropped connection, a leader election): a few quick tries
 * before the step gives up and the program's outage handling takes over.
 */
export const stepRetry = Schedule.exponential("100 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(4))
)

/**
 * An outage (database or broker down, lake not writable): wait with capped backoff, forever, while
 * the program keeps its position. Every attempt is logged by the caller, so it is never silent.
 */
export const outageBackoff = (cap: Duration.DurationInput = "10 seconds") =>
  Schedule.exponential("250 millis", 2).pipe(
    Schedule.either(Schedule.spaced(cap)),
    Schedule.jittered
  )

/** `--once` runs are for scripts: they give up after a bounded wait and exit non-zero. */
export const onceBackoff = outageBackoff("5 seconds").pipe(Schedule.intersect(Schedule.recurs(12)))
