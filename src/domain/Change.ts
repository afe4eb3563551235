import type { Micros } from "./Timestamp.ts"
import type { Order } from "./Order.ts"

/**
 * A change of one order, as logical-replication capture publishes it (capture.mode `logical`).
 * `snapshot` is an order read from the slot's initial snapshot; the others are committed changes.
 * `truncate` is a TRUNCATE of the captured table: no order of its own (orderId 0, order null); it is
 * published as one marker to every partition of the topic, each emptying the orders of its partition.
 */
export type ChangeOp = "insert" | "update" | "delete" | "snapshot" | "truncate"
export const changeOps: ReadonlyArray<ChangeOp> = ["insert", "update", "delete", "snapshot", "truncate"]

/**
 * Where a change stands in the capture order, a total order over everything one slot produces:
 * the commit LSN of its transaction, then `phase` (0: the initial snapshot, read as of the slot's
 * consistent point; 1: streamed), then `seq` (snapshot: the order_id, read in key order; streamed:
 * the change's index in its transaction, from 0). Commit LSNs order transactions as PostgreSQL
 * committed them (per-change LSNs do not: transactions interleave in the WAL), and a streamed
 * commit can sit at the consistent point itself, hence the phase.
 *
 * `epoch` comes first: the slot's life (captureState.ts). LSNs only grow on one server's timeline; a
 * new slot (`--resnapshot`, a failover to a standby promoted below what the old primary reached, a
 * restored backup) can start below the keys already applied, and without the epoch its snapshot and
 * changes would all count as copies. 0: a slot created before epochs existed.
 */
export interface ChangeKey {
  readonly epoch: number
  readonly lsn: bigint
  readonly phase: 0 | 1
  readonly seq: number
}

export interface OrderChange {
  readonly op: ChangeOp
  readonly orderId: number
  /** The row after the change; null for a delete (the message is a tombstone). */
  readonly order: Order | null
  readonly key: ChangeKey
  /** When its transaction committed (null for snapshot rows). */
  readonly commitTime: Micros | null
  /** Its transaction's id (null for snapshot rows). */
  readonly xid: number | null
  /**
   * A truncate's marker as the consumer reads it: the partition count of the topic it was published
   * to (the marker on partition p stands for the orders `partitionOfOrder` sends to p).
   */
  readonly partitions?: number
}

export const compareChangeKeys = (a: ChangeKey, b: ChangeKey): number =>
  a.epoch !== b.epoch
    ? a.epoch - b.epoch
    : a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : a.phase !== b.phase ? a.phase - b.phase : a.seq - b.seq

/** `0/E6BCC38` and `00000000/0E6BCC38` (both appear) to one number. Undefined if it is not an LSN. */
export const parseLsn = (text: string): bigint | undefined => {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text)
  if (match === null) return undefined
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

/** PostgreSQL's own spelling (`%X/%X`), as `pg_current_wal_lsn()` prints it. */
export const formatLsn = (lsn: bigint): string =>
  `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`

/** Message headers of a change (beside `source` and `captured_at`, which every message has). */
export const changeHeaders = {
  op: "op",
  /** The commit LSN of the change's transaction (snapshot rows: the slot's consistent point). */
  lsn: "lsn",
  /** ISO-8601 UTC, microseconds; absent on snapshot rows. */
  commitTime: "commit_ts",
  /** Absent on snapshot rows. */
  xid: "xid",
  /** `formatChangeKey`: the consumer's de-duplication position. */
  changeKey: "change_key",
  /** A truncate's marker only: how many partitions the topic had (one marker went to each). */
  partitions: "partitions"
} as const

/**
 * `<epoch>:<lsn as 16 hex digits>:<phase>:<seq>`, e.g. `1764950400000:000000000E6BCC38:1:3`. Epoch 0
 * keeps the form of the release before epochs (`000000000E6BCC38:1:3`), which a consumer of that
 * release still reads.
 */
export const formatChangeKey = (key: ChangeKey): string =>
  `${key.epoch === 0 ? "" : `${key.epoch}:`}${key.lsn.toString(16).toUpperCase().padStart(16, "0")}:${key.phase}:${key.seq}`

export const parseChangeKey = (text: string | undefined): ChangeKey | undefined => {
  if (text === undefined) return undefined
  const match = /^(?:(\d{1,15}):)?([0-9A-F]{16}):([01]):(\d{1,15})$/.exec(text)
  if (match === null) return undefined
  return {
    epoch: match[1] === undefined ? 0 : Number(match[1]),
    lsn: BigInt(`0x${match[2]}`),
    phase: match[3] === "0" ? 0 : 1,
    seq: Number(match[4])
  }
}
