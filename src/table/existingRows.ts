import { Effect } from "effect"
import { type Order, orderToJson } from "../domain/Order.ts"
import { utcDate } from "../domain/Timestamp.ts"
import { TableStorage } from "../services/TableStorage.ts"
import { dateOf, storagePathOf } from "./dataPaths.ts"
import { readOrdersFile } from "./ordersFile.ts"
import { type Snapshot, statsOf } from "./snapshot.ts"
import { TableError } from "./tableErrors.ts"

const millis = (value: unknown): number | undefined => (typeof value === "string" ? Date.parse(value) : undefined)

/**
 * Which of `orders` the snapshot holds as identical rows (`orderToJson` text). Only files of the
 * orders' date partitions whose statistics admit one of them are read (timestamp statistics are
 * milliseconds, so their upper bound gets a millisecond of slack); files without statistics are read.
 */
export const existingRows = (snapshot: Snapshot, orders: ReadonlyArray<Order>) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const byDate = new Map<string, Array<Order>>()
    for (const order of orders) {
      const date = utcDate(order.created_at)
      const group = byDate.get(date)
      if (group === undefined) byDate.set(date, [order])
      else group.push(order)
    }
    const found = new Set<string>()
    for (const [date, wanted] of byDate) {
      const rows = new Set(wanted.map(orderToJson))
      // Bounds by hand: Math.min(...list) overflows the stack on a large batch.
      let [minId, maxId, minMs, maxMs] = [Infinity, -Infinity, Infinity, -Infinity]
      for (const o of wanted) {
        const ms = Number(o.created_at / 1000n)
        if (o.order_id < minId) minId = o.order_id
        if (o.order_id > maxId) maxId = o.order_id
        if (ms < minMs) minMs = ms
        if (ms > maxMs) maxMs = ms
      }
      for (const add of snapshot.files.values()) {
        if (dateOf(add) !== date) continue
        const stats = statsOf(add)
        const lowId = stats?.minValues?.["order_id"]
        const highId = stats?.maxValues?.["order_id"]
        if (typeof lowId === "number" && typeof highId === "number" && (maxId < lowId || minId > highId)) continue
        const lowMs = millis(stats?.minValues?.["created_at"])
        const highMs = millis(stats?.maxValues?.["created_at"])
        if (lowMs !== undefined && highMs !== undefined && (maxMs < lowMs || minMs > highMs + 1)) continue
        const path = storagePathOf(add.path, storage.root)
        const file = yield* storage.read(path)
        if (file === null) {
          return yield* new TableError({ reason: "missing", path: storage.locate(path), detail: "a live data file of the table is missing" })
        }
        const stored = yield* Effect.tryPromise({
          try: () => readOrdersFile(file.bytes),
          catch: (error) => new TableError({ reason: "corrupt", path: storage.locate(path), detail: `cannot read data file: ${String(error)}` })
        })
        for (const order of stored) {
          const row = orderToJson(order)
          if (rows.has(row)) found.add(row)
        }
      }
    }
    return found as ReadonlySet<string>
  }).pipe(Effect.withSpan("Table.existingRows", { attributes: { orders: orders.length } }))
