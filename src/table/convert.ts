import { Effect } from "effect"
import type { Checkpoint } from "../domain/Checkpoint.ts"
import { parseLakeFileName } from "../domain/LakeFile.ts"
import { TableStorage } from "../services/TableStorage.ts"
import type { Action } from "./actions.ts"
import { commit } from "./commit.ts"
import { parquetRowCount } from "./ordersFile.ts"
import { ordersMetadata, ordersProtocol } from "./ordersTable.ts"
import { positionTxns } from "./positions.ts"
import { emptySnapshot } from "./snapshot.ts"
import { ordersFormat } from "./tableFormat.ts"
import { TableError } from "./tableErrors.ts"

const legacyFile = /^date=(\d{4}-\d{2}-\d{2})\/(part-[^/]*\.parquet)$/

/**
 * Turns a lake written by the previous release (Parquet files under `date=…/`, offsets in the
 * checkpoint file) into a table in one commit: its files as they are, the checkpoint's offsets as
 * the partitions' positions. Nothing is re-read from Kafka or rewritten. Files a crashed run left
 * past the checkpoint (the old consumer deleted those at start) are not taken in: they would be
 * written again from the topic; vacuum removes them after the retention.
 */
export const convertLegacyLake = (topic: string, checkpoint: Checkpoint | undefined, configuration: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const objects = yield* storage.list("date=")
    const ours = checkpoint !== undefined && checkpoint.topic === topic ? checkpoint : undefined
    const nextOffsets = new Map(Object.entries(ours?.partitions ?? {}).map(([p, progress]) => [Number(p), progress.next_offset]))
    const adds: Array<Action> = []
    let rows = 0
    let skipped = 0
    for (const object of [...objects].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      const m = legacyFile.exec(object.path)
      if (m === null) continue
      const id = parseLakeFileName(m[2]!)
      // No checkpoint file: the old consumer would have started the topic over and replaced its files.
      if (id !== undefined && id.topic === topic && id.firstOffset >= (nextOffsets.get(id.partition) ?? 0n)) {
        skipped += 1
        continue
      }
      const found = yield* storage.read(object.path)
      if (found === null) continue
      const count = yield* Effect.try({
        try: () => parquetRowCount(found.bytes),
        catch: (error) => new TableError({ reason: "corrupt", path: storage.locate(object.path), detail: `not a readable Parquet file: ${String(error)}` })
      })
      rows += count
      adds.push({
        add: {
          path: object.path,
          partitionValues: { date: m[1]! },
          size: object.size,
          modificationTime: Math.round(object.modified),
          dataChange: true,
          stats: `{"numRecords":${count}}`
        }
      })
    }
    const now = Date.now()
    const txns = ours === undefined ? [] : Object.entries(ours.partitions).flatMap(([p, progress]) =>
      positionTxns(topic, Number(p), { nextOffset: progress.next_offset, lastCaptureKey: progress.last_key, lastChangeKey: null }, now)
    )
    const committed = yield* commit(emptySnapshot, {
      actions: [
        { protocol: ordersProtocol },
        { metaData: ordersMetadata(crypto.randomUUID(), configuration, now) },
        ...adds,
        ...txns
      ],
      operation: "CONVERT",
      format: ordersFormat,
      operationParameters: { numFiles: String(adds.length), partitionedBy: JSON.stringify(["date"]), sourceFormat: "parquet" },
      conflictsWith: () => "the table was created by another writer meanwhile"
    })
    return { ...committed, files: adds.length, rows, skipped }
  }).pipe(Effect.withSpan("Table.convert"))
