/**
 * Every change the run's own clients know they committed, per order: what the lake's order_changes
 * must hold once the pipeline has drained (logical capture). A transaction whose COMMIT went
 * unanswered enters only once it has been found committed.
 */
export type LedgerOp = "snapshot" | "insert" | "update" | "delete"

export class ChangeLedger {
  /** Per order: its committed changes, in the order the run committed them. */
  readonly perOrder = new Map<number, Array<LedgerOp>>()
  readonly byOp: Record<LedgerOp, number> = { snapshot: 0, insert: 0, update: 0, delete: 0 }

  record(orderId: number, op: LedgerOp): void {
    const list = this.perOrder.get(orderId)
    if (list === undefined) this.perOrder.set(orderId, [op])
    else list.push(op)
    this.byOp[op] += 1
  }

  get total(): number {
    return this.byOp.snapshot + this.byOp.insert + this.byOp.update + this.byOp.delete
  }

  /** Orders whose last change was a delete. */
  deleted(): number {
    let n = 0
    for (const ops of this.perOrder.values()) if (ops[ops.length - 1] === "delete") n += 1
    return n
  }
}
