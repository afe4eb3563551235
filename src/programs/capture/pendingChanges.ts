import type { ChangeKey, OrderChange } from "../../domain/Change.ts"
import type { TableChange } from "../../domain/TableChange.ts"
import type { Micros } from "../../domain/Timestamp.ts"

/** A change of the orders table, or of a table captured beside it (it has a `topic`). */
export type CapturedChange = OrderChange | TableChange

export const isTableChange = (change: CapturedChange): change is TableChange => "topic" in change

export interface OpenTransaction {
  readonly commitLsn: bigint
  readonly xid: number
  readonly commitTime: Micros
  seq: number
}

/**
 * The acknowledgement bookkeeping of one replication connection: changes received and not yet
 * published, the transaction being received, and how far the slot may be confirmed. The rules:
 * the slot is confirmed only up to the end of a COMMIT whose changes (and all before them) the
 * broker has acknowledged, and to a keepalive's or message's position only when nothing is pending.
 * Positions are the wire values (what `confirmed_flush_lsn` becomes): a COMMIT's end, never +1
 * (a transaction whose COMMIT starts before the confirmed position is skipped by the server).
 */
export class PendingChanges {
  private changes: Array<CapturedChange> = []
  private open: OpenTransaction | null = null
  /** The end of the newest COMMIT received: its changes are pending or published. */
  private committedEnd: bigint | null = null
  private confirmed: bigint
  /** The slot's epoch (captureState.ts), first in every key handed out. */
  private readonly epoch: number

  constructor(confirmed: bigint, epoch: number) {
    this.confirmed = confirmed
    this.epoch = epoch
  }

  get acknowledged(): bigint {
    return this.confirmed
  }

  get size(): number {
    return this.changes.length
  }

  get transaction(): OpenTransaction | null {
    return this.open
  }

  begin(commitLsn: bigint, xid: number, commitTime: Micros): void {
    // A connection that dropped mid-transaction starts over with a new instance; a BEGIN inside an
    // open transaction would mean the protocol went wrong.
    if (this.open !== null) throw new Error(`BEGIN of xid ${xid} inside open transaction xid ${this.open.xid}`)
    this.open = { commitLsn, xid, commitTime, seq: 0 }
  }

  /** The change key of the open transaction's next change (the index of the change within it). */
  nextKey(): ChangeKey {
    if (this.open === null) throw new Error("a row change outside a transaction")
    return { epoch: this.epoch, lsn: this.open.commitLsn, phase: 1, seq: this.open.seq++ }
  }

  /**
   * The key the next change will get, without taking it: a schema marker's (it stands before that
   * change, and must not shift the keys of the rows, which a replay in another session gives again).
   */
  peekKey(): ChangeKey {
    if (this.open === null) throw new Error("a relation outside a transaction")
    return { epoch: this.epoch, lsn: this.open.commitLsn, phase: 1, seq: this.open.seq }
  }

  add(change: CapturedChange): void {
    this.changes.push(change)
  }

  commit(commitEndLsn: bigint): void {
    if (this.open === null) throw new Error("COMMIT without BEGIN")
    this.open = null
    this.committedEnd = commitEndLsn
  }

  /**
   * Hands out the pending changes, with the position to confirm once the broker has acknowledged
   * them (null: nothing new to confirm, e.g. only part of an open transaction).
   */
  take(): { readonly changes: ReadonlyArray<CapturedChange>; readonly confirmTo: bigint | null } {
    const changes = this.changes
    this.changes = []
    const confirmTo = this.committedEnd !== null && this.committedEnd > this.confirmed ? this.committedEnd : null
    return { changes, confirmTo }
  }

  /** Records that the slot was confirmed up to `lsn` (after the broker acknowledged what precedes it). */
  confirmedTo(lsn: bigint): void {
    if (lsn > this.confirmed) this.confirmed = lsn
  }

  /**
   * A position the server says it has sent everything before (a keepalive's, our heartbeat
   * message's): confirmable when no transaction is open and nothing is pending, so that an idle
   * captured table in a busy database retains no WAL. Null when it may not be confirmed.
   */
  idleConfirmable(lsn: bigint): bigint | null {
    if (this.open !== null || this.changes.length > 0) return null
    if (this.committedEnd !== null && this.committedEnd > this.confirmed) return null
    return lsn > this.confirmed ? lsn : null
  }
}
