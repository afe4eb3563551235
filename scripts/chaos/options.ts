/** What a chaos run does; `fullChaos` is `npm run chaos`, `quickChaos` is `--quick` and the CI test. */
export interface ChaosOptions {
  /** Seconds of order generation (kills, the broker restart and garbage all happen inside it). */
  readonly durationS: number
  /** SIGKILLs sent to each program at random moments. Crash points add kills on top. */
  readonly kills: number
  readonly brokerRestarts: number
  /** Consumers sharing the topic's partitions through the consumer group (the topic has 3). */
  readonly consumers: number
  /**
   * Where the table lives: a local directory, or a bucket on the run's own S3 server (S3Proxy), which
   * is SIGKILLed and restarted `s3Restarts` times.
   */
  readonly lake: "local" | "s3"
  readonly s3Restarts: number
  /** Bad messages injected at random moments (arming the consumer's dead-letter crash point adds more). */
  readonly garbage: number
  /** Steady insert rate; late transactions and tie groups come on top. */
  readonly ordersPerSecond: number
  readonly seed: number
  /** Probability that a restarted program is armed with a crash point (FOP_CRASH_AT). */
  readonly crashPointChance: number
  /** How long the lake may take to catch up after generation stops. */
  readonly drainTimeoutS: number
  /** How long each program may take to exit 0 after SIGTERM. */
  readonly stopTimeoutS: number
  /** Pipeline settings: small batches so kills land between batches of a stream, not at its ends. */
  readonly batchIntervalS: number
  readonly producerBatchSize: number
  readonly consumerMaxBatchMessages: number
  /** PostgreSQL to use; default PG_URL, else the local superuser path. */
  readonly pgUrl?: string
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void
  /** Cancels the run (Ctrl-C); everything started is stopped, the state directory kept. */
  readonly signal?: AbortSignal
  /**
   * Reads the final table with another engine (the test and `--spark` use Spark) and returns what
   * disagrees with PostgreSQL's committed rows and sum; empty when it agrees.
   */
  readonly checkTable?: (lake: string, expected: { readonly rows: number; readonly sum: string }) => Promise<ReadonlyArray<string>>
}

const base = {
  brokerRestarts: 1,
  consumers: 1,
  lake: "local",
  s3Restarts: 1,
  crashPointChance: 0.5,
  stopTimeoutS: 30,
  batchIntervalS: 0.1,
  producerBatchSize: 50,
  consumerMaxBatchMessages: 200
} as const

export const fullChaos = (seed: number): ChaosOptions => ({
  ...base,
  durationS: 60,
  kills: 6,
  garbage: 12,
  ordersPerSecond: 250,
  drainTimeoutS: 180,
  seed
})

export const quickChaos = (seed: number): ChaosOptions => ({
  ...base,
  durationS: 20,
  kills: 2,
  garbage: 6,
  ordersPerSecond: 150,
  drainTimeoutS: 60,
  seed
})
