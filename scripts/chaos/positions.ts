import { readFileSync } from "node:fs"
import { Effect, Logger, LogLevel } from "effect"
import { Kafka, logLevel } from "kafkajs"
import { tableStorageFor } from "../../src/layers/storage/tableStorageFor.ts"
import { tablePositions } from "../../src/table/positions.ts"
import { loadSnapshot } from "../../src/table/readLog.ts"
import type pg from "pg"

/**
 * Whether the pipeline has passed everything there is, read from its own saved positions: the
 * producer's cursor is at or beyond the newest (created_at, order_id) in the table, and the lake
 * table's position (its txn per partition) is at the end of every partition of the raw topic. Once both hold, nothing more will
 * reach the lake: an order still missing then is lost, and the drain need not wait any longer.
 * Unreadable or absent state counts as "not yet".
 */
export interface Positions {
  readonly producerCaughtUp: boolean
  readonly consumerCaughtUp: boolean
}

const readJson = (path: string): unknown => {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as unknown
  } catch {
    return null
  }
}

export const pipelinePositions = async (
  pool: pg.Pool,
  table: string,
  brokers: string,
  topic: string,
  env: Readonly<Record<string, string>>
): Promise<Positions> => {
  const cursor = readJson(env["STREAMING_LAST_PROCESSED_TIMESTAMP_LOCATION"]!) as { created_at?: unknown; order_id?: unknown } | null
  let producerCaughtUp = false
  if (cursor !== null && typeof cursor.created_at === "string" && typeof cursor.order_id === "number") {
    const { rows: [row] } = await pool.query<{ caught_up: boolean }>(
      `SELECT NOT EXISTS (SELECT 1 FROM "${table}"
         WHERE (created_at, order_id) > (($1::timestamptz AT TIME ZONE 'utc'), $2::int)) AS caught_up`,
      [cursor.created_at, cursor.order_id]
    )
    producerCaughtUp = row?.caught_up === true
  }

  // The consumers' positions live in the table (a txn per partition), wherever the table is.
  const nextOffsets = await Effect.runPromise(
    loadSnapshot().pipe(
      Effect.map((snapshot) => tablePositions(snapshot, topic)),
      Effect.provide(tableStorageFor(env["DATALAKE_PATH"]!)),
      // The run's stdout is its report: the storage layer's start-up line stays out of it.
      Logger.withMinimumLogLevel(LogLevel.Warning)
    )
  ).catch(() => null)
  let consumerCaughtUp = false
  if (nextOffsets !== null) {
    const admin = new Kafka({ clientId: "chaos-positions", brokers: brokers.split(","), logLevel: logLevel.NOTHING }).admin()
    try {
      await admin.connect()
      const ends = await admin.fetchTopicOffsets(topic)
      consumerCaughtUp = ends.every((end) => {
        const next = nextOffsets.get(end.partition)?.nextOffset
        return BigInt(end.high) === 0n || (next !== undefined && next >= BigInt(end.high))
      })
    } catch {
      consumerCaughtUp = false
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  }
  return { producerCaughtUp, consumerCaughtUp }
}
