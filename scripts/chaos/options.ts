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
  /**
   * How the producer captures: `poll` (created_at polling, inserts only) or `logical` (PostgreSQL
   * logical replication: inserts, updates, deletes; the workload then also runs order lifecycles,
   * multi-statement transactions and one large update, and the lake's order_changes is checked).
   */
  readonly capture: "poll" | "logical"
  /**
   * PostgreSQL restarts in the middle of the window. `pgRestartVia`: `cluster` restarts the machine's
   * cluster (pg_ctlcluster stop, a few seconds, start: every client of the server sees it; only as
   * root or the cluster's owner, on a local Debian cluster, else skipped with a log line); `proxy`
   * routes the run's connections (generator and programs) through a TCP proxy of its own and cuts
   * them (the server-side backends terminated too, new connections refused for a few seconds),
   * which leaves other clients of the server alone (the CI test).
   */
  readonly pgRestarts: number
  readonly pgRestartVia: "cluster" | "proxy"
  /** Logical capture: orders in the table before the producer first starts (they come through the slot's snapshot). */
  readonly snapshotRows: number
  /** Logical capture: seconds an order takes from PLACED to DELIVERED|CANCELLED (the planner's time scale). */
  readonly lifecycleSeconds: number
  /** Logical capture: rows of the one large transaction (an UPDATE of that many orders at once). */
  readonly bulkRows: number
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
  readonly checkTable?: (lake: string, expected: TableExpectation) => Promise<ReadonlyArray<string>>
}

/** What the final tables must hold: the orders' rows and sum, and the row count of each other table (logical capture: the restaurants). */
export interface TableExpectation {
  readonly rows: number
  readonly sum: string
  readonly tables?: ReadonlyArray<{ readonly path: string; readonly rows: number }>
}

const base = {
  capture: "poll",
  pgRestartVia: "cluster",
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
  pgRestarts: 0,
  snapshotRows: 3000,
  lifecycleSeconds: 12,
  bulkRows: 4000,
  seed
})

export const quickChaos = (seed: number): ChaosOptions => ({
  ...base,
  durationS: 20,
  kills: 2,
  garbage: 6,
  ordersPerSecond: 150,
  drainTimeoutS: 60,
  pgRestarts: 0,
  snapshotRows: 1000,
  lifecycleSeconds: 8,
  bulkRows: 2500,
  seed
})

/**
 * The logical-capture variant of a preset (`--capture logical`): one PostgreSQL restart, and a lower
 * insert rate, since every order now also brings 2-4 updates (and some a delete), each rewriting the
 * lake file that holds the order (copy-on-write).
 */
export const logicalChaos = (preset: ChaosOptions): ChaosOptions => ({
  ...preset,
  capture: "logical",
  pgRestarts: 1,
  ordersPerSecond: Math.round(preset.ordersPerSecond * 0.4)
})
