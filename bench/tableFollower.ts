/**
 * Follows a Delta table wherever it lives (a local directory or s3://bucket/prefix), through the
 * table's own storage port (`tableStorageFor`): every `pollMs` it reads the next commit files, as
 * `refreshSnapshot` does (one GET or read per poll when nothing is new, no listing), and records
 * when each version and each file it adds was first seen here, and the messages the table holds
 * (the sum of the consumers' next offsets over the topic's partitions, committed with the files).
 * The same code for both stores, so that local and S3 are measured the same way; unlike
 * lakeWatcher.ts it has no inotify wake-up, so a version is seen up to `pollMs` late on either.
 *
 * Meant for a table this run creates: it replays from version 0 without listing the log.
 */
import { Effect, Layer, Logger, ManagedRuntime, Option } from "effect"
import { basename } from "node:path"
import type { S3Settings } from "../src/layers/storage/s3TableStorage.ts"
import { tableStorageFor } from "../src/layers/storage/tableStorageFor.ts"
import { TableStorage } from "../src/services/TableStorage.ts"
import { dateOf, storagePathOf } from "../src/table/dataPaths.ts"
import { tablePositions } from "../src/table/positions.ts"
import { readCommit } from "../src/table/readLog.ts"
import { applyCommit, emptySnapshot, type Snapshot, statsOf } from "../src/table/snapshot.ts"
import { onCleanup } from "./cleanup.ts"

export interface FollowedVersion {
  readonly version: number
  /** ms since epoch when this process first read the version. */
  readonly seenAt: number
  /** The commit's modification time as the store reports it (S3: LastModified). */
  readonly committedAt: number
  /** Messages in the table as of this version (sum of next offsets). */
  readonly messages: number
  /** Rows in the table as of this version: numRecords summed over its live files (files without stats count 0). */
  readonly rows: number
  readonly adds: number
  readonly removes: number
}

export interface FollowedFile {
  /** The file's path as the log names it. */
  readonly logPath: string
  readonly date: string
  /** Kafka partition and offsets from a streamed file's name; null for compacted files. */
  readonly partition: number | null
  readonly firstOffset: bigint | null
  readonly lastOffset: bigint | null
  readonly version: number
  readonly seenAt: number
  readonly bytes: number
  /** numRecords from the file's stats; null when the writer left them out. */
  readonly rows: number | null
}

/**
 * The storage layers log (e.g. "lake on S3") through Effect's default logger, to stdout; the
 * benchmark's stdout is its result paths only, so their lines go to stderr.
 */
export const stderrLogger = Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger))

const streamedName = /^part-(.+)-(\d+)-(\d{20})-(\d{20})(?:-[0-9a-f]+)?\.parquet$/

export interface TableFollower {
  readonly path: string
  readonly pollMs: number
  readonly versions: ReadonlyArray<FollowedVersion>
  /** Every file a version added since the follow began (compacted-away ones included), by log path. */
  readonly files: ReadonlyMap<string, FollowedFile>
  /** Messages in the latest version seen; never goes backwards. */
  readonly messages: () => number
  /** Rows in the latest version seen (numRecords over its live files). */
  readonly rows: () => number
  readonly version: () => number
  readonly snapshot: () => Snapshot
  /** When a version with at least `n` messages was first seen, or null. */
  readonly reachedAt: (n: number) => number | null
  /** Reads whatever is new now (the poll goes on). */
  readonly poll: () => Promise<void>
  /** A local copy of each file (the path itself for a local table; S3: downloaded to the cache). */
  readonly localPaths: (files: ReadonlyArray<FollowedFile>) => Promise<Map<string, string>>
  /** A failure the poll met last (it keeps trying), or null. */
  readonly lastError: () => string | null
  readonly stop: () => Promise<void>
}

export const followTable = async (
  path: string,
  options: { readonly topic: string; readonly pollMs?: number; readonly s3Settings?: S3Settings }
): Promise<TableFollower> => {
  const pollMs = options.pollMs ?? 50
  const runtime = ManagedRuntime.make(Layer.provideMerge(tableStorageFor(path, options.s3Settings), stderrLogger))
  // Building the layer (for S3: the bucket check) before the clock starts.
  await runtime.runPromise(TableStorage)
  let snapshot: Snapshot = emptySnapshot
  let messages = 0
  let rows = 0
  let error: string | null = null
  const versions: Array<FollowedVersion> = []
  const files = new Map<string, FollowedFile>()

  const sumPositions = (s: Snapshot) => {
    let sum = 0
    for (const position of tablePositions(s, options.topic).values()) sum += Number(position.nextOffset)
    return sum
  }

  const readNew = Effect.gen(function*() {
    while (true) {
      const next = yield* readCommit(snapshot.version + 1)
      if (Option.isNone(next)) return
      const seenAt = Date.now()
      const { version, actions, timestamp } = next.value
      for (const action of actions) {
        if (!("remove" in action)) continue
        const removed = snapshot.files.get(action.remove.path)
        if (removed !== undefined) rows -= statsOf(removed)?.numRecords ?? 0
      }
      snapshot = applyCommit(snapshot, version, actions, timestamp)
      let adds = 0
      let removes = 0
      for (const action of actions) {
        if ("remove" in action) removes += 1
        if (!("add" in action)) continue
        adds += 1
        const add = action.add
        rows += statsOf(add)?.numRecords ?? 0
        if (files.has(add.path)) continue
        const id = streamedName.exec(basename(add.path))
        files.set(add.path, {
          logPath: add.path,
          date: dateOf(add),
          partition: id === null ? null : Number(id[2]),
          firstOffset: id === null ? null : BigInt(id[3]!),
          lastOffset: id === null ? null : BigInt(id[4]!),
          version,
          seenAt,
          bytes: add.size,
          rows: statsOf(add)?.numRecords ?? null
        })
      }
      messages = Math.max(messages, sumPositions(snapshot))
      versions.push({ version, seenAt, committedAt: timestamp, messages, rows, adds, removes })
    }
  })

  let inFlight: Promise<void> | null = null
  const poll = () =>
    (inFlight ??= runtime.runPromise(readNew).then(
      () => {
        error = null
      },
      (e: unknown) => {
        error = e instanceof Error ? e.message : String(e)
      }
    ).finally(() => (inFlight = null)))

  let stopped = false
  const timer = setInterval(() => void poll(), pollMs)
  await poll()
  const stop = async () => {
    if (stopped) return
    stopped = true
    clearInterval(timer)
    await inFlight
    await runtime.dispose()
  }
  onCleanup(`stop following ${path}`, stop)

  return {
    path,
    pollMs,
    versions,
    files,
    messages: () => messages,
    rows: () => rows,
    version: () => snapshot.version,
    snapshot: () => snapshot,
    reachedAt: (n) => versions.find((v) => v.messages >= n)?.seenAt ?? null,
    poll: async () => {
      // One that started before the call may have missed the newest commit: run one more.
      await inFlight
      await poll()
    },
    localPaths: (wanted) =>
      runtime.runPromise(Effect.gen(function*() {
        const storage = yield* TableStorage
        const pairs = yield* Effect.forEach(
          wanted,
          (f) => storage.localPath(storagePathOf(f.logPath, storage.root)).pipe(Effect.map((local) => [f.logPath, local] as const)),
          { concurrency: 8 }
        )
        return new Map(pairs)
      })),
    lastError: () => error,
    stop
  }
}
