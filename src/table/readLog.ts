import { Effect, Option } from "effect"
import type { StorageError } from "../services/errors.ts"
import { type StoredObject, TableStorage } from "../services/TableStorage.ts"
import { type Action, LogParseError, parseCommit, type Protocol } from "./actions.ts"
import { decodeCheckpoint } from "./checkpointParquet.ts"
import { checkpointPath, commitPath, lastCheckpointPath, logDir, parseLogEntry } from "./logFiles.ts"
import { emptySnapshot, type Snapshot, SnapshotBuilder } from "./snapshot.ts"
import { TableError } from "./tableErrors.ts"

/** Reader features we implement: none beyond protocol version 1 (no deletion vectors, no column mapping). */
const readableFeatures = new Set<string>()

/** Fails when the table needs a reader we are not (what a writer needs: writeRules.ts). */
export const checkProtocol = (root: string, protocol: Protocol | undefined) =>
  Effect.gen(function*() {
    if (protocol === undefined) return
    const unsupported = (detail: string) => new TableError({ reason: "unsupported", path: `${root}/${logDir}`, detail })
    if (protocol.minReaderVersion > 3 || protocol.minReaderVersion === 2) {
      return yield* unsupported(`reader version ${protocol.minReaderVersion} (column mapping or newer) is not supported`)
    }
    const readerMissing = (protocol.readerFeatures ?? []).filter((f) => !readableFeatures.has(f))
    if (readerMissing.length > 0) return yield* unsupported(`unknown reader features: ${readerMissing.join(", ")}`)
  })

const decodeText = (bytes: Uint8Array) => new TextDecoder("utf-8", { fatal: false }).decode(bytes)

/** One commit's actions, or none when the version does not exist (yet). Damage names the file. */
export const readCommit = (version: number) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const path = commitPath(version)
    const found = yield* storage.read(path)
    if (found === null) return Option.none()
    const actions = yield* decodeCommit(path, found.bytes)
    return Option.some({ version, actions, timestamp: found.modified })
  })

/** A commit file's bytes as its actions; damage names the file. */
export const decodeCommit = (path: string, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    return yield* Effect.try({
      try: () => parseCommit(decodeText(bytes)),
      catch: (error) =>
        new TableError({
          reason: "corrupt",
          path: storage.locate(path),
          detail: error instanceof LogParseError ? error.message : String(error)
        })
    })
  })

interface LastCheckpoint {
  readonly version: number
  readonly parts?: number
}

const readLastCheckpoint = Effect.gen(function*() {
  const storage = yield* TableStorage
  const found = yield* storage.read(lastCheckpointPath)
  if (found === null) return undefined
  const parsed = yield* Effect.try({
    try: () => JSON.parse(decodeText(found.bytes)) as LastCheckpoint,
    catch: (error) => new TableError({ reason: "corrupt", path: storage.locate(lastCheckpointPath), detail: String(error) })
  })
  if (!Number.isSafeInteger(parsed.version)) {
    return yield* new TableError({ reason: "corrupt", path: storage.locate(lastCheckpointPath), detail: "no version" })
  }
  return parsed
})

const checkpointPartPath = (version: number, part: number, parts: number) =>
  parts === 1
    ? checkpointPath(version)
    : `${logDir}${String(version).padStart(20, "0")}.checkpoint.${String(part).padStart(10, "0")}.${String(parts).padStart(10, "0")}.parquet`

const readCheckpoint = (version: number, parts: number) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const actions: Array<Action> = []
    for (let part = 1; part <= parts; part++) {
      const path = checkpointPartPath(version, part, parts)
      const found = yield* storage.read(path)
      if (found === null) {
        return yield* new TableError({ reason: "missing", path: storage.locate(path), detail: `checkpoint part ${part} of ${parts} is missing` })
      }
      const decoded = yield* Effect.tryPromise({
        try: () => decodeCheckpoint(found.bytes),
        catch: (error) =>
          new TableError({ reason: "corrupt", path: storage.locate(path), detail: error instanceof Error ? error.message : String(error) })
      })
      actions.push(...decoded)
    }
    return actions
  })

/** What `_delta_log/` holds: commit versions (with their times) and complete checkpoints. */
export interface LogListing {
  readonly commits: ReadonlyMap<number, StoredObject>
  /** Checkpoint version -> number of parts, for checkpoints with every part present. */
  readonly checkpoints: ReadonlyMap<number, number>
  /** Checkpoints with parts missing: version -> [present, expected]. */
  readonly incompleteCheckpoints: ReadonlyMap<number, readonly [number, number]>
  readonly all: ReadonlyArray<StoredObject>
}

export const listLog: Effect.Effect<LogListing, StorageError, TableStorage> = Effect.gen(function*() {
  const storage = yield* TableStorage
  const all = yield* storage.list(logDir)
  const commits = new Map<number, StoredObject>()
  const parts = new Map<number, Map<number, Set<number>>>()
  for (const object of all) {
    const entry = parseLogEntry(object.path)
    if (entry?.kind === "commit") commits.set(entry.version, object)
    else if (entry?.kind === "checkpoint") {
      const byCount = parts.get(entry.version) ?? new Map<number, Set<number>>()
      parts.set(entry.version, byCount)
      const seen = byCount.get(entry.parts) ?? new Set<number>()
      byCount.set(entry.parts, seen)
      seen.add(entry.part)
    }
  }
  const checkpoints = new Map<number, number>()
  const incompleteCheckpoints = new Map<number, readonly [number, number]>()
  for (const [version, byCount] of parts) {
    for (const [count, seen] of byCount) {
      if (seen.size === count) checkpoints.set(version, count)
      else if (!checkpoints.has(version)) incompleteCheckpoints.set(version, [seen.size, count])
    }
  }
  return { commits, checkpoints, incompleteCheckpoints, all }
})

export interface SnapshotRequest {
  /** Read this version instead of the latest. */
  readonly version?: number
  /** Read the latest version committed at or before this time (ms since the epoch). */
  readonly asOf?: number
}

/**
 * Commit times as Spark gives them: the commit file's modification time, made strictly increasing
 * (a clock that stepped back must not reorder versions).
 */
export const commitTimes = (listing: LogListing): ReadonlyArray<readonly [number, number]> => {
  const versions = [...listing.commits.keys()].sort((a, b) => a - b)
  const out: Array<readonly [number, number]> = []
  let previous = -Infinity
  for (const version of versions) {
    const time = Math.max(listing.commits.get(version)!.modified, previous + 1)
    out.push([version, time])
    previous = time
  }
  return out
}

/**
 * The table's snapshot: the newest complete checkpoint at or below the wanted version, then every
 * commit after it. A gap, a damaged file or a checkpoint that `_last_checkpoint` names but is not
 * there fails with the file named: never a silent fallback to a directory listing.
 */
export const loadSnapshot = (request: SnapshotRequest = {}) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    // The hint before the listing: a writer writes a checkpoint, then the hint, so a listing taken
    // after the hint shows the checkpoint it names (the other order failed under live checkpoints).
    // A newer complete checkpoint in the listing means cleanup removed the hinted one meanwhile.
    const hint = yield* readLastCheckpoint
    const listing = yield* listLog
    if (
      hint !== undefined && !listing.checkpoints.has(hint.version) && ![...listing.checkpoints.keys()].some((v) => v > hint.version) &&
      (listing.commits.size > 0 || hint.version >= 0)
    ) {
      const incomplete = listing.incompleteCheckpoints.get(hint.version)
      return yield* new TableError({
        reason: "missing",
        path: storage.locate(checkpointPartPath(hint.version, 1, hint.parts ?? 1)),
        detail: incomplete === undefined
          ? `_last_checkpoint names checkpoint ${hint.version}, which is not in ${logDir}`
          : `checkpoint ${hint.version} has ${incomplete[0]} of ${incomplete[1]} parts`
      })
    }
    // A loop, not Math.max(...keys): a long log (a day of versions) would overflow the call stack.
    const highest = (keys: Iterable<number>) => {
      let max = -1
      for (const key of keys) if (key > max) max = key
      return max
    }
    const latestCommit = highest(listing.commits.keys())
    const latestCheckpoint = highest(listing.checkpoints.keys())
    const latest = Math.max(latestCommit, latestCheckpoint)
    if (latest < 0) return emptySnapshot

    let target = latest
    if (request.version !== undefined) {
      if (request.version > latest || request.version < 0) {
        return yield* new TableError({ reason: "missing", path: storage.root, detail: `version ${request.version} does not exist (latest is ${latest})` })
      }
      target = request.version
    } else if (request.asOf !== undefined) {
      const times = commitTimes(listing)
      const before = times.filter(([, time]) => time <= request.asOf!)
      if (before.length === 0) {
        return yield* new TableError({
          reason: "missing",
          path: storage.root,
          detail: `no version at or before ${new Date(request.asOf).toISOString()} (the oldest kept is ${
            times.length > 0 ? new Date(times[0]![1]).toISOString() : "none"
          })`
        })
      }
      target = before[before.length - 1]![0]
    }

    const base = [...listing.checkpoints.keys()].filter((v) => v <= target).sort((a, b) => b - a)[0]
    const builder = new SnapshotBuilder(emptySnapshot)
    let from = 0
    if (base !== undefined) {
      const actions = yield* readCheckpoint(base, listing.checkpoints.get(base)!)
      builder.apply(base, actions, listing.commits.get(base)?.modified ?? 0)
      from = base + 1
    }
    for (let v = from; v <= target; v++) {
      if (!listing.commits.has(v)) {
        return yield* new TableError({
          reason: "missing",
          path: storage.locate(commitPath(v)),
          detail: v === 0 || base === undefined && from === 0
            ? `version ${v} is missing and no checkpoint covers it (the log was truncated; versions before the oldest checkpoint cannot be read)`
            : `version ${v} is missing: the log's versions are not contiguous`
        })
      }
    }
    const commits = yield* Effect.forEach(
      Array.from({ length: target - from + 1 }, (_, i) => from + i),
      (v) =>
        readCommit(v).pipe(Effect.flatMap(Option.match({
          onNone: () => new TableError({ reason: "missing", path: storage.locate(commitPath(v)), detail: "removed while reading" }),
          onSome: Effect.succeed
        }))),
      { concurrency: 8 }
    )
    const times = new Map(commitTimes(listing))
    for (const commit of commits) builder.apply(commit.version, commit.actions, times.get(commit.version) ?? commit.timestamp)
    const snapshot = builder.build()
    if (snapshot.protocol === undefined || snapshot.metadata === undefined) {
      return yield* new TableError({ reason: "corrupt", path: storage.locate(logDir), detail: `no protocol or metaData by version ${snapshot.version}` })
    }
    yield* checkProtocol(storage.locate(logDir), snapshot.protocol)
    return snapshot
  })

/**
 * Brings a snapshot up to the newest version by reading the commits after it, one by one, without
 * listing the log: what a writer does before committing and what a reader does to follow the table.
 */
export const refreshSnapshot = (snapshot: Snapshot) =>
  Effect.gen(function*() {
    if (snapshot.version < 0) return yield* loadSnapshot()
    let current = snapshot
    while (true) {
      const next = yield* readCommit(current.version + 1)
      if (Option.isNone(next)) return current
      current = new SnapshotBuilder(current).apply(next.value.version, next.value.actions, next.value.timestamp).build()
    }
  })
