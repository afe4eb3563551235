import { Effect } from "effect"
import { fileTableStorage } from "../../src/layers/storage/fileTableStorage.ts"
import { tablePositions } from "../../src/table/positions.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"

const positionsOf = (lake: string, topic: string) =>
  loadSnapshot().pipe(
    Effect.map((snapshot) => tablePositions(snapshot, topic)),
    Effect.provide(fileTableStorage(lake)),
    Effect.runPromise
  )

/** The table's record of a Kafka partition's next offset (its `txn`), or null when it has none. */
export const tablePosition = async (lake: string, topic: string, partition: number): Promise<bigint | null> =>
  (await positionsOf(lake, topic)).get(partition)?.nextOffset ?? null

/**
 * The table's next offsets summed over the topic's partitions: how many messages of the topic it
 * covers (the topic's total when it is caught up), whichever partitions they went to.
 */
export const tableOffsetsCovered = async (lake: string, topic: string): Promise<bigint> =>
  [...(await positionsOf(lake, topic)).values()].reduce((sum, position) => sum + position.nextOffset, 0n)

/** The table's next offset per partition. */
export const tableNextOffsets = async (lake: string, topic: string): Promise<ReadonlyMap<number, bigint>> =>
  new Map([...(await positionsOf(lake, topic))].map(([p, position]) => [p, position.nextOffset]))
