import { Effect, Schedule } from "effect"
import pg from "pg"
import { formatLsn, parseLsn } from "../../../domain/Change.ts"
import { CaptureError } from "./CaptureError.ts"
import { clientConfigOf, type PgSettings, query } from "./pgConnection.ts"

export interface SlotStatus {
  readonly plugin: string
  readonly activePid: number | null
  /** reserved, extended, unreserved, or lost (invalidated by max_slot_wal_keep_size). */
  readonly walStatus: string | null
  readonly confirmedFlush: bigint | null
  readonly restart: bigint | null
  /** pg_current_wal_lsn() - restart_lsn: the WAL the slot keeps on the server's disk. */
  readonly retainedBytes: number | null
  /** pg_current_wal_lsn() - confirmed_flush_lsn. */
  readonly unconfirmedBytes: number | null
}

const lsnOrNull = (text: string | null) => (text === null ? null : parseLsn(text) ?? null)

/** The slot as pg_replication_slots shows it, or null when there is none of that name. */
export const slotStatus = (pool: pg.Pool, slot: string) =>
  query<{
    plugin: string
    active_pid: number | null
    wal_status: string | null
    confirmed_flush_lsn: string | null
    restart_lsn: string | null
    retained: string | null
    unconfirmed: string | null
  }>(
    pool,
    `SELECT plugin, active_pid, wal_status, confirmed_flush_lsn::text, restart_lsn::text,
        (pg_current_wal_lsn() - restart_lsn)::text AS retained,
        (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS unconfirmed
      FROM pg_replication_slots WHERE slot_name = $1 AND database = current_database()`,
    [slot]
  ).pipe(Effect.map(([row]): SlotStatus | null =>
    row === undefined ? null : {
      plugin: row.plugin,
      activePid: row.active_pid,
      walStatus: row.wal_status,
      confirmedFlush: lsnOrNull(row.confirmed_flush_lsn),
      restart: lsnOrNull(row.restart_lsn),
      retainedBytes: row.retained === null ? null : Number(row.retained),
      unconfirmedBytes: row.unconfirmed === null ? null : Number(row.unconfirmed)
    }
  ))

export const slotBusy = (slot: string, pid: number | string) =>
  new CaptureError({
    reason: "slot-busy",
    detail: `replication slot ${slot} is in use by PID ${pid} (another producer on the same slot?): stop it ` +
      `(SELECT pg_terminate_backend(${pid}) if it is a leftover), or give this producer its own capture.slot`
  })

/**
 * Waits a few seconds for the slot to be free: our own previous connection (a reconnect, a
 * restart) can hold it briefly after it closed. Then a slot-busy error naming the holder.
 */
export const awaitSlotFree = (pool: pg.Pool, slot: string, seconds = 10) =>
  slotStatus(pool, slot).pipe(
    Effect.flatMap((status) =>
      status === null || status.activePid === null ? Effect.succeed(status) : Effect.fail(slotBusy(slot, status.activePid))
    ),
    Effect.retry({
      schedule: Schedule.spaced("500 millis").pipe(Schedule.upTo(`${seconds} seconds`)),
      while: (error) => error.reason === "slot-busy"
    })
  )

export const dropSlot = (pool: pg.Pool, slot: string) =>
  Effect.zipRight(
    awaitSlotFree(pool, slot),
    query(pool, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, [slot])
  ).pipe(Effect.asVoid)

export interface ExportedSnapshot {
  /** Streaming starts with the first commit at or after it. */
  readonly consistentPoint: bigint
  /** For SET TRANSACTION SNAPSHOT while the replication connection stays open and idle. */
  readonly snapshotName: string
}

/**
 * Creates the slot with an exported snapshot on a replication connection (simple query protocol
 * only: it refuses bind parameters). The connection stays open, and must stay silent, until the
 * snapshot's reader has run SET TRANSACTION SNAPSHOT; it closes with the scope.
 */
export const createSlotWithSnapshot = (settings: PgSettings, slot: string) =>
  Effect.gen(function*() {
    // The config already checked it (SlotName); it is spliced into a replication command, so checked
    // again here, before a connection is opened for it.
    if (!/^[a-z0-9_]{1,63}$/.test(slot)) return yield* new CaptureError({ reason: "misconfigured", detail: `invalid slot name ${slot}` })
    const client = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const client = new pg.Client({ ...clientConfigOf(settings), replication: "database" } as pg.ClientConfig)
          client.on("error", () => undefined)
          await client.connect()
          return client
        },
        catch: (cause) => new CaptureError({ reason: "connection", detail: "cannot open a replication connection", cause })
      }),
      (client) => Effect.promise(() => client.end().catch(() => undefined))
    )
    const result = yield* Effect.tryPromise({
      try: () => client.query<{ consistent_point: string; snapshot_name: string }>(`CREATE_REPLICATION_SLOT "${slot}" LOGICAL pgoutput (SNAPSHOT 'export')`),
      catch: (cause) =>
        String(cause).includes("logical decoding requires")
          ? new CaptureError({ reason: "misconfigured", detail: "wal_level is not logical", cause })
          : new CaptureError({ reason: "connection", detail: `cannot create replication slot ${slot}`, cause })
    })
    const row = result.rows[0]!
    const consistentPoint = parseLsn(row.consistent_point)
    if (consistentPoint === undefined) {
      return yield* new CaptureError({ reason: "state", detail: `slot ${slot} reported consistent point ${row.consistent_point}` })
    }
    yield* Effect.logInfo("replication slot created").pipe(Effect.annotateLogs({ slot, consistent_point: formatLsn(consistentPoint) }))
    return { consistentPoint, snapshotName: row.snapshot_name } satisfies ExportedSnapshot
  })
