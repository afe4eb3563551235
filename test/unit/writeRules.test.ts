/**
 * A version another writer made (Spark: ALTER TABLE ... ADD CONSTRAINT, SET TBLPROPERTIES) binds our
 * next commit as much as the table's first version: each commit checks the version it builds on, and
 * refuses, naming the feature, before anything is written.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Schedule } from "effect"
import { orderToJson } from "../../src/domain/Order.ts"
import { append, makeMemoryTopic } from "../../src/layers/memory/MemoryTopic.ts"
import { memoryDeadLetters, memoryOrderStream } from "../../src/layers/memory/memoryLayers.ts"
import { makeMemoryObjects, memoryTableStorage } from "../../src/layers/storage/memoryTableStorage.ts"
import { consume } from "../../src/programs/consumer/consume.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { type Action, type Metadata, type Protocol, serializeCommit } from "../../src/table/actions.ts"
import { commit } from "../../src/table/commit.ts"
import { commitPath } from "../../src/table/logFiles.ts"
import { openTable } from "../../src/table/openTable.ts"
import { loadSnapshot, refreshSnapshot } from "../../src/table/readLog.ts"
import { ordersFormat } from "../../src/table/tableFormat.ts"
import { memoryLakeLayer } from "../support/memoryTable.ts"
import { fakeAdd } from "../support/tableCases.ts"
import { order } from "./fixtures.ts"


const remove = (name: string, dataChange: boolean): Action => ({
  remove: { path: `date=2025-01-15/${name}.parquet`, deletionTimestamp: Date.now(), dataChange }
})

const request = (actions: ReadonlyArray<Action>) => ({ actions, operation: "WRITE", format: ordersFormat, conflictsWith: () => undefined })

/**
 * Our table, then `change` as the next version by another writer (as Spark writes it), absorbed by a
 * refresh the way a consumer's snapshot absorbs it: then our commit of `actions`.
 */
const afterForeignChange = (change: (metadata: Metadata, protocol: Protocol) => ReadonlyArray<Action>, actions: ReadonlyArray<Action>) =>
  Effect.gen(function*() {
    const objects = yield* makeMemoryObjects
    const storage = Context.get(yield* Layer.build(memoryTableStorage(objects)), TableStorage)
    const run = <A, E>(effect: Effect.Effect<A, E, TableStorage>) => Effect.provideService(effect, TableStorage, storage)
    const start = yield* run(openTable({ configuration: {}, legacy: { topic: "t", checkpoint: Effect.succeed(undefined) } }))
    const ours = yield* run(commit(start, request([fakeAdd("a"), fakeAdd("b")])))
    const foreign = change(ours.snapshot.metadata!, ours.snapshot.protocol!)
    const text = serializeCommit([{ commitInfo: { operation: "SET TBLPROPERTIES", engineInfo: "Apache-Spark/4.0.1 Delta-Lake/4.0.0" } }, ...foreign])
    expect(yield* storage.writeIfAbsent(commitPath(ours.version + 1), new TextEncoder().encode(text))).toBe(true)
    const absorbed = yield* run(refreshSnapshot(ours.snapshot))
    const outcome = yield* run(commit(absorbed, request(actions))).pipe(Effect.either)
    const after = yield* run(loadSnapshot())
    return { outcome, versionBefore: absorbed.version, versionAfter: after.version }
  })

const withProperties = (properties: Record<string, string>) => (metadata: Metadata): ReadonlyArray<Action> => [
  { metaData: { ...metadata, configuration: { ...metadata.configuration, ...properties } } }
]

const refused = (result: Effect.Effect.Success<ReturnType<typeof afterForeignChange>>, ...named: ReadonlyArray<string>) => {
  expect(result.outcome._tag).toBe("Left")
  if (result.outcome._tag !== "Left") return
  expect(result.outcome.left._tag).toBe("TableError")
  for (const text of named) expect(result.outcome.left.message).toContain(text)
  // Refused before anything was written.
  expect(result.versionAfter).toBe(result.versionBefore)
}

describe("writer rules checked on every commit", () => {
  it.scoped("a CHECK constraint added by another writer stops our next commit, naming it", () =>
    Effect.gen(function*() {
      const result = yield* afterForeignChange(
        (metadata) => [
          { protocol: { minReaderVersion: 1, minWriterVersion: 3 } },
          ...withProperties({ "delta.constraints.positive_amount": "amount > 0" })(metadata)
        ],
        [fakeAdd("c")]
      )
      refused(result, "CHECK constraint positive_amount (amount > 0)", "DROP CONSTRAINT")
    }))

  it.scoped("delta.appendOnly=true refuses a commit that removes rows, and allows appends and compaction's swaps", () =>
    Effect.gen(function*() {
      refused(yield* afterForeignChange(withProperties({ "delta.appendOnly": "true" }), [remove("a", true), fakeAdd("a2")]), "delta.appendOnly=true")
      const append = yield* afterForeignChange(withProperties({ "delta.appendOnly": "true" }), [fakeAdd("c")])
      expect(append.outcome._tag).toBe("Right")
      const compaction = yield* afterForeignChange(withProperties({ "delta.appendOnly": "true" }), [remove("a", false), remove("b", false), fakeAdd("ab")])
      expect(compaction.outcome._tag).toBe("Right")
    }))

  for (
    const [property, value, named] of [
      ["delta.enableChangeDataFeed", "true", "change data feed"],
      ["delta.enableInCommitTimestamps", "true", "in-commit timestamps"],
      ["delta.enableRowTracking", "true", "row tracking"],
      ["delta.columnMapping.mode", "name", "column mapping"]
    ] as const
  ) {
    it.scoped(`${property}=${value} stops our next commit, naming ${named}`, () =>
      Effect.gen(function*() {
        refused(yield* afterForeignChange(withProperties({ [property]: value }), [fakeAdd("c")]), `${property}=${value}`, named)
      }))
  }

  it.scoped("a writer feature we do not implement stops our next commit, naming it", () =>
    Effect.gen(function*() {
      const result = yield* afterForeignChange(
        () => [{ protocol: { minReaderVersion: 1, minWriterVersion: 7, writerFeatures: ["appendOnly", "invariants", "domainMetadata"] } }],
        [fakeAdd("c")]
      )
      refused(result, "domainMetadata")
    }))

  it.scoped("a column invariant or generation expression stops our next commit, naming the column", () =>
    Effect.gen(function*() {
      const withFieldMetadata = (key: string, value: unknown) => (metadata: Metadata): ReadonlyArray<Action> => {
        const schema = JSON.parse(metadata.schemaString) as { fields: Array<{ name: string; metadata: Record<string, unknown> }> }
        schema.fields.find((f) => f.name === "amount")!.metadata = { [key]: value }
        return [{ metaData: { ...metadata, schemaString: JSON.stringify(schema) } }]
      }
      refused(yield* afterForeignChange(withFieldMetadata("delta.invariants", "{\"expression\":{\"expression\":\"amount > 0\"}}"), [fakeAdd("c")]), "column amount", "invariant")
      refused(yield* afterForeignChange(withFieldMetadata("delta.generationExpression", "1"), [fakeAdd("c")]), "column amount", "generation expression")
    }))

  it.scoped("harmless property changes (retention, checkpoint interval) and a constraint-free writer version 3 do not", () =>
    Effect.gen(function*() {
      const result = yield* afterForeignChange(
        (metadata) => [
          { protocol: { minReaderVersion: 1, minWriterVersion: 3 } },
          ...withProperties({ "delta.logRetentionDuration": "interval 30 days", "delta.checkpointInterval": "20" })(metadata)
        ],
        [fakeAdd("c")]
      )
      expect(result.outcome._tag).toBe("Right")
      expect(result.versionAfter).toBe(result.versionBefore + 1)
    }))
})

describe("the consumer on a table it may no longer write", () => {
  it.live("stops with the reason instead of retrying, and commits nothing", () =>
    Effect.gen(function*() {
      const topic = "orders_raw"
      const raw = yield* makeMemoryTopic(topic)
      const dlq = yield* makeMemoryTopic("orders_dlq")
      const objects = yield* makeMemoryObjects
      const storage = Context.get(yield* Layer.build(memoryTableStorage(objects)), TableStorage)
      const latest = loadSnapshot().pipe(Effect.provideService(TableStorage, storage))
      const layer = Layer.mergeAll(memoryOrderStream(raw), memoryDeadLetters(dlq), memoryLakeLayer(objects))
      const publish = (id: number) => append(raw, [order(id, "2025-01-15T10:00:00Z")].map((o) => ({ key: String(o.order_id), value: orderToJson(o) })))
      yield* publish(1)
      const running = yield* consume({
        topic,
        pollWait: "10 millis",
        flush: { maxMessages: 1000, maxBytes: 1024 * 1024, linger: "10 millis", backlogLinger: "50 millis" },
        once: false
      }).pipe(Effect.provide(layer), Effect.fork)
      // The consumer has committed order 1 (version 1) and runs on.
      yield* latest.pipe(Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (s) => s.version >= 1 }), Effect.timeout("10 seconds"))
      // Meanwhile Spark: ALTER TABLE orders ADD CONSTRAINT positive_amount CHECK (amount > 0)
      const before = yield* latest
      const text = serializeCommit([
        { protocol: { minReaderVersion: 1, minWriterVersion: 3 } },
        { metaData: { ...before.metadata!, configuration: { ...before.metadata!.configuration, "delta.constraints.positive_amount": "amount > 0" } } }
      ])
      yield* storage.writeIfAbsent(commitPath(before.version + 1), new TextEncoder().encode(text))
      yield* publish(2)
      // Before: a warning and a retry every few seconds, for ever.
      const stopped = yield* Fiber.join(running).pipe(Effect.flip, Effect.timeout("20 seconds"))
      expect(stopped._tag).toBe("TableError")
      expect((stopped as { message: string }).message).toContain("positive_amount")
      expect((yield* latest).version).toBe(before.version + 1)
    }).pipe(Effect.scoped))
})
