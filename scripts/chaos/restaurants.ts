import type pg from "pg"
import type { ComparedColumn } from "./capturedTableCheck.ts"
import type { ChangeLedger } from "./changeLedger.ts"
import { type OutageStats, readThroughOutage, runTransaction, xactCommitted } from "./pgOutage.ts"
import type { Random } from "./random.ts"
import { sleep, throwIfAborted } from "./timing.ts"

/**
 * The logical run's second table (`tables:`): `<roll>_restaurants`, keyed by a bigint beyond 32 bits,
 * partitioned in the lake by the UTC date of `opened_at`. Its workload inserts, updates (several
 * times: updates favour recent rows) and deletes restaurants in short transactions of its own, now
 * and then an insert and updates of one row in one transaction, or one rolled back; the orders'
 * multi-statement transactions change restaurants too (`RestaurantChanges.inOrderTransaction`). Once,
 * mid-window, `ALTER TABLE … ADD COLUMN delivery_fee numeric(6,2)` (no default), after which rows set
 * it. Every committed change goes into the table's own ledger, keyed by restaurant_id.
 */
export const restaurantsTableOf = (roll: string) => `${roll}_restaurants`

/** The column the run adds mid-window. */
export const addedColumn = "delivery_fee"

/** Far beyond 2^31, still exact as a JS number. */
const firstId = 5_000_000_000

export const createRestaurantsTable = async (pool: pg.Pool, table: string): Promise<void> => {
  await pool.query(`CREATE TABLE "${table}" (
    restaurant_id bigint PRIMARY KEY,
    name text NOT NULL,
    rating numeric(8,2),
    opened_at timestamptz,
    menu jsonb,
    tags text[],
    seats int)`)
}

/** The YAML entry of `tables:` the programs get (partitioned by the timestamptz column). */
export const restaurantsTablesYaml = (table: string) => `tables:
  - name: ${table}
    partition_by: opened_at
`

const names = ["Café Ünïcode", "東京 Sushi 🍣", "Dosa Darbar", "Crème & Brûlée", "Ресторан «Борщ»", "Pizza \"Napoli\"", "Spice Route"]
const tagWords = ["veg", "a,b", "quote\"d", "東京", "🍕", "late night", "back\\slash"]

export interface RestaurantStats {
  inserts: number
  updates: number
  deletes: number
  /** Transactions of its own that committed / rolled back on purpose. */
  transactions: number
  rolledBack: number
  /** Inserted and updated in one transaction. */
  insertThenUpdate: number
  /** Changed in the same transaction as orders. */
  withOrders: number
  /** When the column was added, ms into the window (null: not added). */
  columnAddedAtMs: number | null
  /** Rows written with the added column set. */
  rowsWithAddedColumn: number
}

/** One change statement with its parameters. */
type Statement = readonly [text: string, values: ReadonlyArray<unknown>]

/**
 * The restaurants' state the run keeps: ids in the table (or being changed by an open transaction:
 * those are checked out, so two transactions never change one row and the ledger stays exact).
 */
export class RestaurantChanges {
  readonly stats: RestaurantStats = {
    inserts: 0, updates: 0, deletes: 0, transactions: 0, rolledBack: 0, insertThenUpdate: 0, withOrders: 0,
    columnAddedAtMs: null, rowsWithAddedColumn: 0
  }
  private nextId = firstId
  private readonly live: Array<number> = []
  private readonly busy = new Set<number>()
  private columnAdded = false

  constructor(readonly table: string, readonly ledger: ChangeLedger, private readonly random: Random) {}

  /** Rows in the table before the producer first starts: they come through the slot's snapshot. */
  async insertSnapshot(pool: pg.Pool, rows: number): Promise<void> {
    for (let i = 0; i < rows; i++) {
      const [text, values] = this.insertStatement()
      await pool.query(text, values as Array<unknown>)
    }
    for (const id of this.live) this.ledger.record(id, "snapshot")
  }

  private opened(): string | null {
    if (this.random.chance(0.05)) return null // the null partition
    // Any instant of the last ten days, to the microsecond (several date partitions; an update moves rows between them).
    const micros = (Date.now() - this.random.int(0, 10 * 86_400_000)) * 1000 + this.random.int(0, 999)
    const iso = new Date(Math.floor(micros / 1000)).toISOString()
    return `${iso.slice(0, 23)}${String(micros % 1000).padStart(3, "0")}Z`
  }

  private rating(): string | null {
    return this.random.chance(0.1) ? null : (this.random.int(-9_999_999, 99_999_999) / 100).toFixed(2)
  }

  private menu(): string | null {
    if (this.random.chance(0.1)) return null
    return JSON.stringify({ dishes: this.random.int(0, 300), name: this.random.pick(names), spicy: this.random.chance(0.5), price: this.random.int(1, 9999) / 100 })
  }

  private tags(): Array<string | null> | null {
    if (this.random.chance(0.1)) return null
    return Array.from({ length: this.random.int(0, 4) }, () => (this.random.chance(0.1) ? null : this.random.pick(tagWords)))
  }

  private seats(): number | null {
    return this.random.chance(0.3) ? null : this.random.int(-5, 400)
  }

  private fee(): string | null {
    return this.random.chance(0.2) ? null : (this.random.int(0, 999_999) / 100).toFixed(2)
  }

  /** A new restaurant (its id taken now, never reused even if its transaction rolls back). */
  private insertStatement(): Statement {
    const id = this.nextId++
    this.live.push(id)
    const name = `${this.random.pick(names)} ${id - firstId}`
    const base = [id, name, this.rating(), this.opened(), this.menu(), this.tags(), this.seats()]
    if (!this.columnAdded) {
      return [`INSERT INTO "${this.table}" (restaurant_id, name, rating, opened_at, menu, tags, seats) VALUES ($1, $2, $3, $4, $5, $6, $7)`, base]
    }
    this.stats.rowsWithAddedColumn += 1
    return [`INSERT INTO "${this.table}" (restaurant_id, name, rating, opened_at, menu, tags, seats, ${addedColumn}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [...base, this.fee()]]
  }

  /** An update of one to three columns (after the ADD COLUMN, often the new one). */
  private updateStatement(id: number): Statement {
    const setters: Array<[string, unknown]> = [
      ["name", `${this.random.pick(names)} renamed ${this.random.int(0, 999)}`],
      ["rating", this.rating()],
      ["opened_at", this.opened()],
      ["menu", this.menu()],
      ["tags", this.tags()],
      ["seats", this.seats()]
    ]
    const chosen: Array<[string, unknown]> = []
    const count = this.random.int(1, 3)
    while (chosen.length < count) {
      const pick = this.random.pick(setters)
      if (!chosen.includes(pick)) chosen.push(pick)
    }
    if (this.columnAdded && this.random.chance(0.6)) {
      chosen.push([addedColumn, this.fee()])
      this.stats.rowsWithAddedColumn += 1
    }
    return [
      `UPDATE "${this.table}" SET ${chosen.map(([column], i) => `${column} = $${i + 2}`).join(", ")} WHERE restaurant_id = $1`,
      [id, ...chosen.map(([, value]) => value)]
    ]
  }

  /** A live restaurant no open transaction holds, favouring recent ones (so rows change several times). */
  private checkOut(): number | undefined {
    for (let attempt = 0; attempt < 8 && this.live.length > 0; attempt++) {
      const recent = this.random.chance(0.7)
      const index = recent ? Math.max(0, this.live.length - 1 - this.random.int(0, 30)) : this.random.int(0, this.live.length - 1)
      const id = this.live[index]!
      if (!this.busy.has(id)) {
        this.busy.add(id)
        return id
      }
    }
    return undefined
  }

  private forget(id: number) {
    const index = this.live.lastIndexOf(id)
    if (index >= 0) this.live.splice(index, 1)
  }

  /**
   * One transaction's worth of changes, as statements and what they record once committed (in
   * statement order); `settle(false)` puts back what a rollback undid.
   */
  private plan(): { statements: Array<Statement>; changes: Array<[number, "insert" | "update" | "delete"]>; settle: (committed: boolean) => void } {
    const statements: Array<Statement> = []
    const changes: Array<[number, "insert" | "update" | "delete"]> = []
    const inserted: Array<number> = []
    const held: Array<number> = []
    const deleted: Array<number> = []
    const roll = this.random.next()
    if (roll < 0.35 || this.live.length < 20) {
      for (let i = this.random.int(1, 3); i > 0; i--) {
        statements.push(this.insertStatement())
        inserted.push(this.live[this.live.length - 1]!)
        changes.push([inserted[inserted.length - 1]!, "insert"])
      }
      if (this.random.chance(0.3)) {
        // The same row inserted and updated (twice) in one transaction.
        const id = inserted[0]!
        statements.push(this.updateStatement(id), this.updateStatement(id))
        changes.push([id, "update"], [id, "update"])
        this.stats.insertThenUpdate += 1
      }
    } else if (roll < 0.85) {
      for (let i = this.random.int(1, 2); i > 0; i--) {
        const id = this.checkOut()
        if (id === undefined) break
        held.push(id)
        for (let n = this.random.int(1, 2); n > 0; n--) {
          statements.push(this.updateStatement(id))
          changes.push([id, "update"])
        }
      }
    } else {
      const id = this.checkOut()
      if (id !== undefined) {
        held.push(id)
        deleted.push(id)
        if (this.random.chance(0.3)) {
          statements.push(this.updateStatement(id))
          changes.push([id, "update"])
        }
        statements.push([`DELETE FROM "${this.table}" WHERE restaurant_id = $1`, [id]])
        changes.push([id, "delete"])
      }
    }
    // Inserted rows stay checked out until the transaction ends.
    for (const id of inserted) this.busy.add(id)
    const settle = (committed: boolean) => {
      for (const id of [...inserted, ...held]) this.busy.delete(id)
      if (!committed) {
        for (const id of inserted) this.forget(id)
        return
      }
      for (const id of deleted) this.forget(id)
      for (const [id, op] of changes) {
        this.ledger.record(id, op)
        if (op === "insert") this.stats.inserts += 1
        else if (op === "update") this.stats.updates += 1
        else this.stats.deletes += 1
      }
    }
    return { statements, changes, settle }
  }

  /**
   * Changes to run inside another transaction (the orders' multi-statement ones): call `settle`
   * with whether that transaction committed.
   */
  inOrderTransaction(): { run: (client: pg.PoolClient) => Promise<void>; settle: (committed: boolean) => void } {
    const planned = this.plan()
    return {
      run: async (client) => {
        for (const [text, values] of planned.statements) await client.query(text, values as Array<unknown>)
      },
      settle: (committed) => {
        if (committed && planned.statements.length > 0) this.stats.withOrders += 1
        planned.settle(committed)
      }
    }
  }

  /** Its own short transactions until `stop`, the ADD COLUMN once at `addColumnAtMs` into the window. */
  async run(pool: pg.Pool, genStart: number, addColumnAtMs: number, outage: OutageStats, log: (line: string) => void, stop: AbortSignal, abort: AbortSignal): Promise<void> {
    while (!stop.aborted) {
      if (!(await sleep(this.random.int(40, 200), stop))) break
      throwIfAborted(abort)
      if (!this.columnAdded && Date.now() - genStart >= addColumnAtMs) await this.addColumn(pool, genStart, outage, log, abort)
      const planned = this.plan()
      if (planned.statements.length === 0) {
        planned.settle(false)
        continue
      }
      const rollback = this.random.chance(0.08)
      const outcome = await runTransaction(pool, async (client) => {
        const { rows: [x] } = await client.query<{ xid: string }>("SELECT pg_current_xact_id()::text AS xid")
        for (const [text, values] of planned.statements) await client.query(text, values as Array<unknown>)
        return { value: x!.xid, rollback }
      }, (xid) => xactCommitted(pool, xid, abort), outage, abort)
      const committed = outcome.status === "committed"
      planned.settle(committed)
      if (committed) this.stats.transactions += 1
      else this.stats.rolledBack += 1
    }
  }

  /** ADD COLUMN without a default, retried through an outage (the catalog says whether it committed). */
  private async addColumn(pool: pg.Pool, genStart: number, outage: OutageStats, log: (line: string) => void, abort: AbortSignal): Promise<void> {
    const exists = async () =>
      (await pool.query("SELECT 1 FROM information_schema.columns WHERE table_name = $1 AND column_name = $2", [this.table, addedColumn])).rowCount! > 0
    while (!(await readThroughOutage(exists, abort))) {
      await runTransaction(pool, async (client) => {
        await client.query(`ALTER TABLE "${this.table}" ADD COLUMN ${addedColumn} numeric(6,2)`)
        return { value: true, rollback: false }
      }, () => exists(), outage, abort).catch((error: unknown) => {
        // Another attempt got there first (its answer lost): the column is there.
        if (!/already exists/.test(String(error))) throw error
      })
    }
    this.columnAdded = true
    this.stats.columnAddedAtMs = Date.now() - genStart
    log(`ALTER TABLE "${this.table}" ADD COLUMN ${addedColumn} numeric(6,2) at ${(this.stats.columnAddedAtMs / 1000).toFixed(1)} s; rows set it from now on`)
  }
}

/** The restaurants' columns, compared as text (delivery_fee is added mid-run: a side without it reads NULL). */
export const restaurantColumns: ReadonlyArray<ComparedColumn> = [
  { name: "restaurant_id", pg: "$c::text", lake: "$c::VARCHAR" },
  { name: "name", pg: "$c", lake: "$c" },
  { name: "rating", pg: "$c::text", lake: "$c::VARCHAR" },
  { name: "opened_at", pg: "(extract(epoch FROM $c) * 1000000)::bigint::text", lake: "epoch_us($c)::VARCHAR" },
  { name: "menu", pg: "$c::text", lake: "$c" },
  { name: "tags", pg: "to_json($c)::text", lake: "to_json($c)::VARCHAR" },
  { name: "seats", pg: "$c::text", lake: "$c::VARCHAR" },
  { name: "delivery_fee", pg: "$c::text", lake: "$c::VARCHAR" }
]
