/**
 * Sees lake files appear. A file is readable from the moment it is renamed into place, so the time
 * it is first seen here is when its orders became readable. Detection: inotify (fs.watch on the lake
 * and each date directory) plus a directory scan every `pollMs` as a safety net; each file also keeps
 * its ctime, which on Linux is set by the rename itself (coarse kernel clock, a few ms), as a
 * cross-check independent of this process's event loop.
 */
import { DuckDBInstance } from "@duckdb/node-api"
import { type FSWatcher, readdirSync, readFileSync, statSync, watch } from "node:fs"
import { join } from "node:path"
import { parseLakeFileName } from "../src/domain/LakeFile.ts"
import { onCleanup } from "./cleanup.ts"

export interface LakeFile {
  readonly path: string
  readonly date: string
  readonly name: string
  readonly firstOffset: bigint
  readonly lastOffset: bigint
  /** ms since epoch when this process first saw it. */
  readonly firstSeen: number
  readonly seenBy: "watch" | "poll"
  /** ms since epoch of the rename (ctime), null if the file was gone. */
  ctime: number | null
  bytes: number | null
}

const partFile = /^part-.*\.parquet$/

/**
 * Messages the consumer has finished with, from its checkpoint (`offsets.json`, README: next offset
 * per partition). It moves only after every file of a batch is renamed into place, so it says "all
 * of these are readable", which file names alone cannot: a batch spanning two dates writes two files
 * with the same offset range, one after the other.
 */
export const checkpointedMessages = (checkpointFile: string): number => {
  try {
    const checkpoint = JSON.parse(readFileSync(checkpointFile, "utf8")) as { partitions: Record<string, { next_offset: string }> }
    return Object.values(checkpoint.partitions).reduce((sum, p) => sum + Number(p.next_offset), 0)
  } catch {
    return 0 // not written yet (or, for an instant, being replaced: the next call sees it)
  }
}

export const watchLake = (root: string, checkpointFile: string, pollMs = 20) => {
  const files = new Map<string, LakeFile>()
  const dirWatchers = new Map<string, FSWatcher>()
  let lastCheckpointed = 0
  let rootWatcher: FSWatcher | null = null
  let stopped = false

  const record = (dir: string, date: string, name: string, seenBy: "watch" | "poll") => {
    const path = join(dir, name)
    if (files.has(path) || !partFile.test(name)) return
    const id = parseLakeFileName(name)
    if (id === undefined) return
    const firstSeen = Date.now()
    let ctime: number | null = null
    let bytes: number | null = null
    try {
      const stat = statSync(path, { bigint: true })
      ctime = Number(stat.ctimeNs / 1000n) / 1000
      bytes = Number(stat.size)
    } catch {
      return // a rename event for a file that is not there (yet, or any more)
    }
    files.set(path, { path, date, name, firstOffset: id.firstOffset, lastOffset: id.lastOffset, firstSeen, seenBy, ctime, bytes })
  }

  const scanDir = (dir: string, date: string, seenBy: "watch" | "poll") => {
    let names: Array<string>
    try {
      names = readdirSync(dir)
    } catch {
      return
    }
    for (const name of names) record(dir, date, name, seenBy)
  }

  const watchDir = (name: string) => {
    const dir = join(root, name)
    if (dirWatchers.has(dir)) return
    const date = name.slice("date=".length)
    try {
      const watcher = watch(dir, (_event, filename) => {
        if (filename !== null && partFile.test(filename)) record(dir, date, filename, "watch")
      })
      watcher.on("error", () => undefined)
      dirWatchers.set(dir, watcher)
    } catch {
      return
    }
    scanDir(dir, date, "watch")
  }

  const scanRoot = (seenBy: "watch" | "poll") => {
    let entries: Array<string>
    try {
      entries = readdirSync(root)
    } catch {
      return
    }
    if (rootWatcher === null) {
      try {
        rootWatcher = watch(root, (_event, filename) => {
          if (filename !== null && filename.startsWith("date=")) watchDir(filename)
        })
        rootWatcher.on("error", () => undefined)
      } catch {
        // the poll still works
      }
    }
    for (const name of entries) {
      if (!name.startsWith("date=")) continue
      watchDir(name)
      scanDir(join(root, name), name.slice("date=".length), seenBy)
    }
  }

  scanRoot("poll")
  const timer = setInterval(() => scanRoot("poll"), pollMs)
  const stop = () => {
    if (stopped) return
    stopped = true
    clearInterval(timer)
    rootWatcher?.close()
    for (const watcher of dirWatchers.values()) watcher.close()
  }
  onCleanup(`stop watching ${root}`, stop)

  return {
    pollMs,
    files,
    /**
     * Messages (= orders: the benchmark sends no garbage and no duplicates) whose files are all in
     * the lake, from the consumer's checkpoint. Never goes backwards.
     */
    messages: () => (lastCheckpointed = Math.max(lastCheckpointed, checkpointedMessages(checkpointFile))),
    /** Files first seen at or after `since`. */
    filesSince: (since: number) => [...files.values()].filter((f) => f.firstSeen >= since),
    rescan: () => scanRoot("poll"),
    stop
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
    close
  }
}

export type DuckDb = Awaited<ReturnType<typeof openDuckDb>>
