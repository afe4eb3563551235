import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { ordersStats } from "../../src/table/ordersTable.ts"
import { tableCases } from "../support/tableCases.ts"
import { order } from "./fixtures.ts"

// The table's behaviour on a storage: the same cases run over S3 in test/integration/tableS3.test.ts.
tableCases({
  name: "memory",
  fresh: makeMemoryObjects.pipe(
    Effect.flatMap((objects) => Layer.build(memoryTableStorage(objects))),
    Effect.map((context) => Context.get(context, TableStorage))
  )
})

describe("delta table statistics", () => {
  it.effect("writes exact statistics", () =>
    Effect.sync(() => {
      const stats = JSON.parse(ordersStats([order(7, "2025-01-15T10:00:00.123456Z", 1999), order(3, "2025-01-15T11:00:00Z", null)]))
      expect(stats).toEqual({
        numRecords: 2,
        minValues: { order_id: 3, amount: 19.99, created_at: "2025-01-15T10:00:00.123Z" },
        maxValues: { order_id: 7, amount: 19.99, created_at: "2025-01-15T11:00:00.000Z" },
        nullCount: { order_id: 0, customer_name: 0, restaurant_name: 0, item: 0, amount: 1, order_status: 0, created_at: 0 }
      })
    }))
})
