import { PgClient } from "@effect/sql-pg"
import { Effect, Ref } from "effect"
import type { CapturedTableConfig } from "../config/capturedTables.ts"
import { quoteIdentifier, TopicName } from "../config/Identifiers.ts"
import { menus } from "../generator/menu.ts"
import { type DemoLayout, demoNames } from "./demoLayout.ts"

/**
 * The demo's second table: the restaurants orders come from, captured beside the orders table as a
 * `tables:` entry would be (its own topic and Delta table), by its key's sequence.
 */
export const restaurantsDdl = `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(demoNames.restaurants)} (
  restaurant_id serial PRIMARY KEY,
  name text NOT NULL,
  city text NOT NULL,
  rating numeric(2,1),
  dishes text[] NOT NULL,
  opened_at timestamptz NOT NULL DEFAULT now()
)`

const cities = ["Bengaluru", "Mumbai", "Delhi", "Chennai", "Hyderabad", "Pune"]

/** The table as the consumer and `npm run query` name it, with the reference design's pattern of names. */
export const demoRestaurantsTable = (layout: DemoLayout): CapturedTableConfig => ({
  ref: { schema: "public", name: demoNames.restaurants },
  display: `public.${demoNames.restaurants}`,
  lakeName: "restaurants",
  key: undefined,
  partitionBy: undefined,
  topic: TopicName.make(demoNames.restaurantsTopic),
  path: layout.restaurantsLake,
  changesPath: `${layout.restaurantsLake}_changes`,
  consumerGroup: `${demoNames.restaurantsTopic}_lake_writer`
})

/** The restaurants of the order generator's menu, each with its dishes. */
export const seedRestaurants = Effect.gen(function*() {
  const sql = yield* PgClient.PgClient
  const entries = Object.entries(menus)
  const rows = entries.map((_, i) => `($${i * 4 + 1}, $${i * 4 + 2}, $${i * 4 + 3}::numeric, $${i * 4 + 4}::text[])`)
  const params = entries.flatMap(([name, items], i) => [name, cities[i % cities.length]!, (3.5 + (i % 4) * 0.4).toFixed(1), `{${items.map((item) => `"${item.item}"`).join(",")}}`])
  yield* sql.unsafe(`INSERT INTO ${quoteIdentifier(demoNames.restaurants)} (name, city, rating, dishes) VALUES ${rows.join(", ")}`, params)
  return entries.length
})

/** A new restaurant every `everyMs` for `seconds` (a rating still unknown: NULL), counted in `opened`. */
export const openRestaurants = (seconds: number, everyMs: number, opened: Ref.Ref<number>) =>
  Effect.gen(function*() {
    const sql = yield* PgClient.PgClient
    const count = Math.floor((seconds * 1000) / everyMs)
    for (let i = 1; i <= count; i++) {
      yield* Effect.sleep(`${everyMs} millis`)
      yield* Effect.uninterruptible(
        sql.unsafe(`INSERT INTO ${quoteIdentifier(demoNames.restaurants)} (name, city, dishes) VALUES ($1, $2, $3::text[])`, [
          `New Kitchen ${i}`,
          cities[i % cities.length]!,
          "{\"Chef's Special\"}"
        ]).pipe(Effect.zipRight(Ref.update(opened, (n) => n + 1)))
      )
    }
  })

export const countRestaurants = Effect.flatMap(PgClient.PgClient, (sql) =>
  sql.unsafe<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdentifier(demoNames.restaurants)}`)).pipe(
    Effect.map((rows) => rows[0]?.n ?? 0)
  )
