/**
 * Follows the lake's Delta table: a file is readable from the moment a commit names it (a file in a
 * date directory that no version names is invisible to every reader), so the time a commit is first
 * seen here is when its orders became readable. Detection: the next commit file is looked for every
 * `pollMs` (a stat and, when it is there, one read: cheap) plus inotify on `_delta_log/` to wake up
 * early; each file also keeps its commit's time (the commit file's mtime, which Delta engines use as
 * the version's timestamp), as a cross-check independent of this process's event loop.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { Effect } from "effect"
import { type FSWatcher, readdirSync, readFileSync, statSync, watch } from "node:fs"
import { basename, join } from "node:path"
import { fileTableStorage } from "../src/layers/storage/fileTableStorage.ts"
import { parseCommit } from "../src/table/actions.ts"
import { dateOf, storagePathOf } from "../src/table/dataPaths.ts"
import { commitPath, lastCheckpointPath, logDir } from "../src/table/logFiles.ts"
import { loadSnapshot } from "../src/table/readLog.ts"
import { applyCommit, emptySnapshot, filesByPartition, type Snapshot } from "../src/table/snapshot.ts"
import { onCleanup } from "./cleanup.ts"

export interface LakeFile {
  /** Absolute path of the data file. */
  readonly path: string
  /** Its `date` partition value, from the log. */
  readonly date: string
  readonly name: string
  /** The Kafka offset range in a streamed file's name; null for compacted files. */
  readonly firstOffset: bigint | null
  readonly lastOffset: bigint | null
  /** The table version that first named it. */
  readonly version: number
  /** ms since epoch when this process first saw that version. */
  readonly firstSeen: number
  readonly seenBy: "watch" | "poll"
  /** ms since epoch of the commit that named it (the commit file's mtime), null if it was gone. */
  ctime: number | null
  /** The file's size as the log records it. */
  bytes: number | null
}

const streamedName = /^part-(.+)-(\d+)-(\d{20})-(\d{20})(?:-[0-9a-f]+)?\.parquet$/

/**
 * Messages the consumer has finished with, from its old checkpoint file (`offsets.json`): kept for
 * pipelines from before the table held positions.
 */
export const checkpointedMessages = (checkpointFile: string): number => {
  try {
    const checkpoint = JSON.parse(readFileSync(checkpointFile, "utf8")) as { partitions: Record<string, { next_offset: string }> }
    return Object.values(checkpoint.partitions).reduce((sum, p) => sum + Number(p.next_offset), 0)
  } catch {
    return 0 // not written (any more, or yet)
  }
}

/**
 * Messages whose files are all in the table: the consumer's next offset per Kafka partition, which
 * it commits in `txn` actions together with the files (appId `<topic>-<partition>`).
 */
export const tableMessages = (snapshot: Snapshot): number => {
  let sum = 0
  for (const [appId, txn] of snapshot.txns) if (/-\d+$/.test(appId)) sum += txn.version
  return sum
}

/** Live files (those the version names) per date partition. */
export const liveFilesByDate = (snapshot: Snapshot): ReadonlyMap<string, number> =>
  new Map([...filesByPartition(snapshot)].map(([date, files]) => [date, files.length] as const).sort(([a], [b]) => (a < b ? -1 : 1)))

/** Files in `_delta_log/` now (commits, checkpoints, `_last_checkpoint`, temporaries): what log cleanup keeps bounded. */
export const deltaLogFileCount = (root: string): number => {
  try {
    return readdirSync(join(root, logDir), { withFileTypes: true }).filter((e) => e.isFile()).length
  } catch {
    return 0
  }
}

/**
 * The next commit after `snapshot`, applied, with its time; undefined when it is not there yet.
 * Synchronous, so that `rescan()` leaves `files` up to date when it returns.
 */
const nextCommit = (root: string, snapshot: Snapshot): { snapshot: Snapshot; committedAt: number } | undefined => {
  const path = join(root, ...commitPath(snapshot.version + 1).split("/"))
  let text: string
  let committedAt: number
  try {
    committedAt = statSync(path).mtimeMs
    text = readFileSync(path, "utf8")
  } catch {
    return undefined
  }
  return { snapshot: applyCommit(snapshot, snapshot.version + 1, parseCommit(text), committedAt), committedAt }
}

export const watchLake = (root: string, checkpointFile: string, pollMs = 20) => {
  const files = new Map<string, LakeFile>()
  let current: Snapshot = emptySnapshot
  /** Set while the first snapshot of an existing table (one whose early commits were cleaned up) loads. */
  let loading = false
  let lastMessages = 0
  let logWatcher: FSWatcher | null = null
  let stopped = false

  const locate = (logPath: string) => join(root, ...storagePathOf(logPath, root).split("/"))
  let reported = ""

  const record = (snapshot: Snapshot, committedAt: number, seenBy: "watch" | "poll") => {
    const firstSeen = Date.now()
    for (const add of snapshot.files.values()) {
      const path = locate(add.path)
      if (files.has(path)) continue
      const name = basename(path)
      const id = streamedName.exec(name)
      files.set(path, {
        path,
        date: dateOf(add),
        name,
        firstOffset: id === null ? null : BigInt(id[3]!),
        lastOffset: id === null ? null : BigInt(id[4]!),
        version: snapshot.version,
        firstSeen,
        seenBy,
        ctime: committedAt,
        bytes: add.size
      })
    }
  }

  const follow = (seenBy: "watch" | "poll") => {
    if (stopped || loading) return
    if (current.version < 0 && !existsCommitZero() && existsLastCheckpoint()) {
      // A table whose first versions were cleaned up: read its checkpoint once, then follow commits.
      loading = true
      Effect.runPromise(loadSnapshot().pipe(Effect.provide(fileTableStorage(root)))).then(
        (snapshot) => {
          current = snapshot
          record(snapshot, snapshot.timestamp, seenBy)
        },
        (error) => process.stderr.write(`[bench] cannot read the table at ${root}: ${String(error)}\n`)
      ).finally(() => (loading = false))
      return
    }
    try {
      while (true) {
        const next = nextCommit(root, current)
        if (next === undefined) break
        current = next.snapshot
        record(current, next.committedAt, seenBy)
      }
    } catch (error) {
      // A damaged commit: say so once; the table's own readers fail on it too.
      const message = `[bench] cannot follow the table at ${root} past version ${current.version}: ${String(error)}\n`
      if (message !== reported) process.stderr.write((reported = message))
    }
    if (logWatcher === null) {
      try {
        logWatcher = watch(join(root, logDir), () => follow("watch"))
        logWatcher.on("error", () => undefined)
      } catch {
        // no _delta_log yet: the poll goes on, and sets the watch once it exists
      }
    }
  }
  const existsCommitZero = () => exists(join(root, ...commitPath(0).split("/")))
  const existsLastCheckpoint = () => exists(join(root, ...lastCheckpointPath.split("/")))

  follow("poll")
  const timer = setInterval(() => follow("poll"), pollMs)
  const stop = () => {
    if (stopped) return
    stopped = true
    clearInterval(timer)
    logWatcher?.close()
  }
  onCleanup(`stop watching ${root}`, stop)

  return {
    pollMs,
    /** Every file a version has named since the watch began (compacted-away ones included), by absolute path. */
    files,
    /** The table version last seen. */
    version: () => current.version,
    /** The files the latest version seen names. */
    liveFiles: () => {
      const live = new Set([...current.files.keys()].map(locate))
      return [...files.values()].filter((f) => live.has(f.path))
    },
    /** Live files per date partition, in the latest version seen. */
    liveFilesByDate: () => liveFilesByDate(current),
    /** Files in `_delta_log/` right now. */
    logFileCount: () => deltaLogFileCount(root),
    /**
     * Messages (= orders: the benchmark sends no garbage and no duplicates) whose files are all in
     * the table, from the positions committed with them. Never goes backwards.
     */
    messages: () => {
      follow("poll")
      return (lastMessages = Math.max(lastMessages, tableMessages(current), checkpointedMessages(checkpointFile)))
    },
    /** Files first seen at or after `since`. */
    filesSince: (since: number) => [...files.values()].filter((f) => f.firstSeen >= since),
    rescan: () => follow("poll"),
    stop
  }
}

const exists = (path: string) => {
  try {
    statSync(path)
    return true
  } catch {
    return false
  }
}

export type LakeWatcher = ReturnType<typeof watchLake>

const quote = (text: string) => `'${text.replaceAll("'", "''")}'`

/** One DuckDB (one thread: the benchmark should not compete with the pipeline) for reading lake files. */
export const openDuckDb = async () => {
  const instance = await DuckDBInstance.create(":memory:", { threads: "1" })
  const connection = await instance.connect()
  let closed = false
  const close = () => {
    if (closed) return
    closed = true
    connection.closeSync()
    instance.closeSync()
  }
  onCleanup("close DuckDB", close)
  return {
    /** order_id of every row of the given files, with the file it is in. */
    orderIds: async (paths: ReadonlyArray<string>): Promise<{ ids: Array<number>; files: Array<string> }> => {
      if (paths.length === 0) return { ids: [], files: [] }
      const reader = await connection.runAndReadAll(
        `SELECT order_id::INTEGER AS id, filename FROM read_parquet([${paths.map(quote).join(", ")}], filename = true)`
      )
      const columns = reader.getColumnsJS()
      return { ids: columns[0] as Array<number>, files: columns[1] as Array<string> }
    },
    /** Per file: rows; and over all files: rows, distinct order_ids, bytes. */
    summary: async (paths: ReadonlyArray<string>) => {
      if (paths.length === 0) return { rows: 0, distinctIds: 0, perFile: new Map<string, number>() }
      const list = `[${paths.map(quote).join(", ")}]`
      const totals = (await connection.runAndReadAll(
        `SELECT count(*)::BIGINT AS n, count(DISTINCT order_id)::BIGINT AS d FROM read_parquet(${list})`
      )).getRowsJS()[0]!
      const perFile = (await connection.runAndReadAll(
        `SELECT file_name, num_rows::BIGINT AS n FROM parquet_file_metadata(${list})`
      )).getRowsJS()
      return {
        rows: Number(totals[0]),
        distinctIds: Number(totals[1]),
        perFile: new Map(perFile.map((r) => [String(r[0]), Number(r[1])]))
      }
    },
    /** The state the files hold, to compare with the source table: rows, distinct ids, sum(amount), DELIVERED orders. */
    state: async (paths: ReadonlyArray<string>) => {
      if (paths.length === 0) return { rows: 0, distinctIds: 0, amount: 0, delivered: 0 }
      const row = (await connection.runAndReadAll(
        `SELECT count(*)::BIGINT, count(DISTINCT order_id)::BIGINT, coalesce(sum(amount), 0)::DOUBLE, ` +
          `count(*) FILTER (WHERE order_status = 'DELIVERED')::BIGINT FROM read_parquet([${paths.map(quote).join(", ")}])`
      )).getRowsJS()[0]!
      return { rows: Number(row[0]), distinctIds: Number(row[1]), amount: Math.round(Number(row[2]) * 100) / 100, delivered: Number(row[3]) }
    },
    close
  }
}

export type DuckDb = Awaited<ReturnType<typeof openDuckDb>>
