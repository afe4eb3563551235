import { NodeContext } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { capturedTablesOf } from "../../src/config/capturedTables.ts"
import { loadConfig } from "../../src/config/loadConfig.ts"

const reference = Fs.readFileSync("configs/orders_stream.yml", "utf8").replace("mode: poll ", "mode: logical")

const written: Array<string> = []
afterAll(() => {
  for (const dir of written) Fs.rmSync(dir, { recursive: true, force: true })
})

const withTables = (tables: string, base = reference) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fop-tables-"))
  written.push(dir)
  const file = Path.join(dir, "orders_stream.yml")
  Fs.writeFileSync(file, `${base}\ntables:\n${tables}\n`)
  return file
}

const load = (file: string, env: Record<string, string> = {}) => loadConfig(file, env).pipe(Effect.either, Effect.provide(NodeContext.layer))

const errorOf = (file: string, env: Record<string, string> = {}) =>
  load(file, env).pipe(Effect.map((result) => {
    if (Either.isRight(result)) throw new Error("expected a ConfigError")
    return result.left.message
  }))

describe("tables: in the configuration", () => {
  it.effect("without the key, only the orders table is captured (the reference configuration unchanged)", () =>
    Effect.gen(function*() {
      const config = Either.getOrThrow(yield* load("configs/orders_stream.yml"))
      expect(config.tables).toEqual([])
      expect(capturedTablesOf(config)).toEqual([])
    }))

  it.effect("names each table's topic, lake path, history and group after the orders table's", () =>
    Effect.gen(function*() {
      const file = withTables(`  - name: 2025em1100506_restaurants\n    partition_by: opened_at\n  - name: ops.order_items\n    key: [order_id, line]\n    topic: items_raw\n    path: ./lake/items`)
      const config = Either.getOrThrow(yield* load(file))
      const [restaurants, items] = capturedTablesOf(config)
      const output = Path.resolve("datalake/food/2025em1100506/output")
      expect(restaurants).toEqual({
        ref: { schema: "public", name: "2025em1100506_restaurants" },
        display: "public.2025em1100506_restaurants",
        lakeName: "restaurants",
        key: undefined,
        partitionBy: "opened_at",
        topic: "2025em1100506_food_restaurants_raw",
        path: `${output}/restaurants`,
        changesPath: `${output}/restaurants_changes`,
        consumerGroup: "2025em1100506_food_restaurants_raw_lake_writer"
      })
      expect(items).toMatchObject({
        ref: { schema: "ops", name: "order_items" },
        lakeName: "order_items",
        key: ["order_id", "line"],
        topic: "items_raw",
        path: Path.resolve("lake/items"),
        changesPath: `${Path.resolve("lake/items")}_changes`
      })
    }))

  it.effect("TABLES in the environment lists tables with their defaults", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fop-tables-"))
      written.push(dir)
      const file = Path.join(dir, "orders_stream.yml")
      Fs.writeFileSync(file, reference)
      const config = Either.getOrThrow(yield* load(file, { TABLES: "2025em1100506_restaurants, s.t" }))
      expect(capturedTablesOf(config).map((t) => t.display)).toEqual(["public.2025em1100506_restaurants", "s.t"])
    }))

  it.effect("the orders table may be listed, without options", () =>
    Effect.gen(function*() {
      const config = Either.getOrThrow(yield* load(withTables(`  - name: 2025em1100506_orders\n  - name: 2025em1100506_restaurants`)))
      expect(capturedTablesOf(config).map((t) => t.lakeName)).toEqual(["restaurants"])
      const file = withTables(`  - name: 2025em1100506_orders\n    partition_by: created_at`)
      expect(yield* errorOf(file)).toBe(`${file}: tables.0: 2025em1100506_orders is the orders table (postgres.table): its topic, key and layout are the reference design's and take no options`)
    }))

  it.effect("refuses what would mix two tables up, naming the key", () =>
    Effect.gen(function*() {
      const twice = withTables(`  - name: a\n  - name: public.a`)
      expect(yield* errorOf(twice)).toBe(`${twice}: tables.1.name: public.a is listed twice (also tables.0)`)
      const topic = withTables(`  - name: a\n    topic: 2025em1100506_food_orders_raw`)
      expect(yield* errorOf(topic)).toBe(`${topic}: tables.0.topic: topic 2025em1100506_food_orders_raw is already the orders topic (kafka.topic): give the table its own`)
      const path = withTables(`  - name: a\n  - name: b\n    path: ${Path.resolve("datalake/food/2025em1100506/output/a")}`)
      expect(yield* errorOf(path)).toContain(`${path}: tables.1.path: ${Path.resolve("datalake/food/2025em1100506/output/a")} is already the table of public.a`)
      const typo = withTables(`  - name: a\n    partition: created_at`)
      expect(yield* errorOf(typo)).toBe(`${typo}: tables.0.partition: Unknown key; an entry takes name, key, partition_by, topic, path`)
      const bad = withTables(`  - name: "a; drop table x"`)
      expect(yield* errorOf(bad)).toContain(`${bad}: tables.0.name: Expected a table as name or schema.name`)
    }))

  it.effect("capture.mode poll takes tables too (polled by key; the key is checked against the catalog at start)", () =>
    Effect.gen(function*() {
      const poll = withTables(`  - name: restaurants\n    partition_by: opened_at`, reference.replace("mode: logical", "mode: poll"))
      const config = Either.getOrThrow(yield* load(poll))
      expect(config.capture.mode).toBe("poll")
      expect(capturedTablesOf(config).map((table) => [table.display, table.partitionBy])).toEqual([["public.restaurants", "opened_at"]])
      const twice = withTables(`  - name: a\n  - name: public.a`, reference.replace("mode: logical", "mode: poll"))
      expect(yield* errorOf(twice)).toBe(`${twice}: tables.1.name: public.a is listed twice (also tables.0)`)
    }))
})
