import { Effect } from "effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { SqlIdentifier } from "../config/Identifiers.ts"
import { StorageError } from "../services/errors.ts"

/** The reference design's names, so what the demo shows is what the real pipeline uses. */
export const demoNames = {
  table: SqlIdentifier.make("2025em1100506_orders"),
  topic: "2025em1100506_food_orders_raw",
  dlqTopic: "2025em1100506_food_orders_dlq",
  /** The second table, named as `tables:` would name it (capturedTables.ts). */
  restaurants: SqlIdentifier.make("2025em1100506_restaurants"),
  restaurantsTopic: "2025em1100506_food_restaurants_raw"
} as const

/** Where one demo run writes: the reference layout (`output/`, `checkpoints/`, `lastprocess/`) under one folder. */
export interface DemoLayout {
  readonly root: string
  readonly lake: string
  /** Beside the orders table, as `tables:` places a table by default (its history beside it, `_changes`). */
  readonly restaurantsLake: string
  readonly checkpoints: string
  readonly cursor: string
}

export const demoLayout = (dir: string): DemoLayout => {
  const root = Path.resolve(dir)
  return {
    root,
    lake: Path.join(root, "output", "orders"),
    restaurantsLake: Path.join(root, "output", "restaurants"),
    checkpoints: Path.join(root, "checkpoints", "orders"),
    cursor: Path.join(root, "lastprocess", "orders")
  }
}

/**
 * Each run starts from an empty database, so a previous run's cursor, checkpoint and lake would
 * only confuse it. Only the demo's own folders go: `--dir` may point at a folder holding other things.
 */
export const resetDemoDir = (layout: DemoLayout) =>
  Effect.forEach(
    [Path.dirname(layout.lake), Path.dirname(layout.checkpoints), Path.dirname(layout.cursor)],
    (path) =>
      Effect.tryPromise({
        try: () => Fs.rm(path, { recursive: true, force: true }),
        catch: (cause) => new StorageError({ path, operation: "remove", cause })
      }),
    { discard: true }
  )
