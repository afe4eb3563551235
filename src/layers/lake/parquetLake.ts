import { Effect, Layer } from "effect"
import { parquetWriteBuffer } from "hyparquet-writer"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import { lakeFileName, parseLakeFileName, partitionDir } from "../../domain/LakeFile.ts"
import { StorageError } from "../../services/errors.ts"
import { Lake, type WrittenFile } from "../../services/Lake.ts"
import { isTemporaryName, writeFileAtomic } from "../file/atomicWrite.ts"
import { orderColumns, orderSchema } from "./orderColumns.ts"

const createdBy = "food-orders-pipeline (hyparquet-writer)"

const listPartitionDirs = (root: string) =>
  Effect.tryPromise({
    try: async () => {
      const entries = await Fs.readdir(root, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return []
        throw error
      })
      return entries.filter((e) => e.isDirectory() && e.name.startsWith("date=")).map((e) => Path.join(root, e.name))
    },
    catch: (cause) => new StorageError({ path: root, operation: "list", cause })
  })

/** Parquet files under `root/date=YYYY-MM-DD/`, written with hyparquet-writer. */
export const parquetLake = (root: string) =>
  Layer.succeed(Lake, Lake.of({
    writeBatch: (batch, ordersByDate) =>
      Effect.forEach([...ordersByDate], ([date, orders]) => {
        const path = Path.join(root, partitionDir(date), lakeFileName(batch))
        return Effect.suspend(() => {
          const buffer = new Uint8Array(parquetWriteBuffer({
            columnData: orderColumns(orders),
            schema: orderSchema as never,
            codec: "SNAPPY",
            rowGroupSize: 1_000_000,
            createdBy,
            kvMetadata: [{
              key: "food_orders.source",
              value: JSON.stringify({
                topic: batch.topic,
                partition: batch.partition,
                first_offset: batch.firstOffset.toString(),
                last_offset: batch.lastOffset.toString()
              })
            }]
          }))
          return writeFileAtomic(path, buffer).pipe(
            Effect.as({ path, date, rows: orders.length, bytes: buffer.byteLength } satisfies WrittenFile)
          )
        })
      }).pipe(Effect.withSpan("Lake.writeBatch", { attributes: { partition: batch.partition } })),

    discardUncommitted: (topic, partition, fromOffset) =>
      Effect.gen(function*() {
        const dirs = yield* listPartitionDirs(root)
        let removed = 0
        for (const dir of dirs) {
          const names = yield* Effect.tryPromise({
            try: () => Fs.readdir(dir),
            catch: (cause) => new StorageError({ path: dir, operation: "list", cause })
          })
          for (const name of names) {
            const id = parseLakeFileName(name)
            const stale = isTemporaryName(name) ||
              (id !== undefined && id.topic === topic && id.partition === partition && id.firstOffset >= fromOffset)
            if (!stale) continue
            const path = Path.join(dir, name)
            yield* Effect.tryPromise({
              try: () => Fs.rm(path, { force: true }),
              catch: (cause) => new StorageError({ path, operation: "remove", cause })
            })
            if (!isTemporaryName(name)) removed += 1
          }
        }
        return removed
      })
  }))
