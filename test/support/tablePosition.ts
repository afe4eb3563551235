import { Effect } from "effect"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { tablePositions } from "../../src/table/positions.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"

/** The table's record of a Kafka partition's next offset (its `txn`), or null when it has none. */
export const tablePosition = (lake: string, topic: string, partition = 0): Promise<bigint | null> =>
  loadSnapshot().pipe(
    Effect.map((snapshot) => tablePositions(snapshot, topic).get(partition)?.nextOffset ?? null),
    Effect.provide(fileTableStorage(lake)),
    Effect.runPromise
  )
