import type { Action, AddFile, Metadata, Protocol, RemoveFile, Txn } from "./actions.ts"

/**
 * A version of the table: what replaying the log up to `version` gives (PROTOCOL.md, "Action
 * Reconciliation"). Immutable: a commit makes a new snapshot, so a reader holding one keeps
 * reading exactly that version while writers go on.
 */
export interface Snapshot {
  /** -1 while the table does not exist yet. */
  readonly version: number
  readonly protocol: Protocol | undefined
  readonly metadata: Metadata | undefined
  /** The live data files, by path as written in the log. */
  readonly files: ReadonlyMap<string, AddFile>
  /** Removed files still within the retention: kept in checkpoints so that vacuum spares them. */
  readonly tombstones: ReadonlyMap<string, RemoveFile>
  /** The latest transaction version per application (ours: one per Kafka topic-partition). */
  readonly txns: ReadonlyMap<string, Txn>
  /** When `version` was committed (ms): the commit file's modification time, as Spark reads it. */
  readonly timestamp: number
}

export const emptySnapshot: Snapshot = {
  version: -1,
  protocol: undefined,
  metadata: undefined,
  files: new Map(),
  tombstones: new Map(),
  txns: new Map(),
  timestamp: 0
}

/**
 * Replays commits onto a snapshot. Each map is copied only when a commit first changes it, so a
 * streaming commit (adds and txns) does not copy the tombstones, nor a compaction the txns: a
 * table with many removed files within the retention stays cheap to commit to.
 */
export class SnapshotBuilder {
  version: number
  protocol: Protocol | undefined
  metadata: Metadata | undefined
  timestamp: number
  #files: ReadonlyMap<string, AddFile>
  #tombstones: ReadonlyMap<string, RemoveFile>
  #txns: ReadonlyMap<string, Txn>
  #owned = { files: false, tombstones: false, txns: false }

  constructor(from: Snapshot = emptySnapshot) {
    this.version = from.version
    this.protocol = from.protocol
    this.metadata = from.metadata
    this.timestamp = from.timestamp
    this.#files = from.files
    this.#tombstones = from.tombstones
    this.#txns = from.txns
  }

  get files(): ReadonlyMap<string, AddFile> {
    return this.#files
  }

  get tombstones(): ReadonlyMap<string, RemoveFile> {
    return this.#tombstones
  }

  get txns(): ReadonlyMap<string, Txn> {
    return this.#txns
  }

  #mutable<K extends "files" | "tombstones" | "txns">(which: K) {
    if (!this.#owned[which]) {
      this.#owned[which] = true
      if (which === "files") this.#files = new Map(this.#files)
      else if (which === "tombstones") this.#tombstones = new Map(this.#tombstones)
      else this.#txns = new Map(this.#txns)
    }
    return (which === "files" ? this.#files : which === "tombstones" ? this.#tombstones : this.#txns) as Map<string, never>
  }

  apply(version: number, actions: ReadonlyArray<Action>, timestamp: number): this {
    for (const action of actions) {
      if ("add" in action) {
        ;(this.#mutable("files") as Map<string, AddFile>).set(action.add.path, action.add)
        if (this.#tombstones.has(action.add.path)) this.#mutable("tombstones").delete(action.add.path)
      } else if ("remove" in action) {
        if (this.#files.has(action.remove.path)) this.#mutable("files").delete(action.remove.path)
        ;(this.#mutable("tombstones") as Map<string, RemoveFile>).set(action.remove.path, action.remove)
      } else if ("txn" in action) {
        ;(this.#mutable("txns") as Map<string, Txn>).set(action.txn.appId, action.txn)
      } else if ("metaData" in action) {
        this.metadata = action.metaData
      } else if ("protocol" in action) {
        this.protocol = action.protocol
      }
    }
    this.version = version
    this.timestamp = timestamp
    return this
  }

  /** The snapshot; the builder must not be used after this (the maps are handed over, not copied). */
  build(): Snapshot {
    return {
      version: this.version,
      protocol: this.protocol,
      metadata: this.metadata,
      files: this.#files,
      tombstones: this.#tombstones,
      txns: this.#txns,
      timestamp: this.timestamp
    }
  }
}

export const applyCommit = (snapshot: Snapshot, version: number, actions: ReadonlyArray<Action>, timestamp: number): Snapshot =>
  new SnapshotBuilder(snapshot).apply(version, actions, timestamp).build()

/** Tombstones older than the retention are dropped, as Spark drops them from checkpoints. */
export const withoutExpiredTombstones = (snapshot: Snapshot, cutoffMs: number): Snapshot => {
  const tombstones = new Map<string, RemoveFile>()
  for (const [path, remove] of snapshot.tombstones) {
    if ((remove.deletionTimestamp ?? 0) >= cutoffMs) tombstones.set(path, remove)
  }
  return { ...snapshot, tombstones }
}

/**
 * The actions a checkpoint at this snapshot holds (PROTOCOL.md, "Checkpoints"): protocol, metadata,
 * txns, live files and unexpired tombstones; never commitInfo.
 */
export const checkpointActions = (snapshot: Snapshot): ReadonlyArray<Action> => {
  const actions: Array<Action> = []
  if (snapshot.protocol !== undefined) actions.push({ protocol: snapshot.protocol })
  if (snapshot.metadata !== undefined) actions.push({ metaData: snapshot.metadata })
  for (const txn of snapshot.txns.values()) actions.push({ txn })
  for (const add of snapshot.files.values()) actions.push({ add: { ...add, dataChange: false } })
  for (const remove of snapshot.tombstones.values()) actions.push({ remove: { ...remove, dataChange: false } })
  return actions
}

/** Live files grouped by their `date` partition value. */
export const filesByPartition = (snapshot: Snapshot, column = "date"): ReadonlyMap<string, ReadonlyArray<AddFile>> => {
  const out = new Map<string, Array<AddFile>>()
  for (const add of snapshot.files.values()) {
    const value = add.partitionValues[column] ?? "__HIVE_DEFAULT_PARTITION__"
    const group = out.get(value)
    if (group === undefined) out.set(value, [add])
    else group.push(add)
  }
  return out
}

export interface FileStats {
  readonly numRecords: number
  readonly minValues?: Readonly<Record<string, unknown>>
  readonly maxValues?: Readonly<Record<string, unknown>>
  readonly nullCount?: Readonly<Record<string, unknown>>
}

/** The file's statistics, or undefined when the writer left them out (allowed by the protocol). */
export const statsOf = (add: AddFile): FileStats | undefined => {
  if (add.stats === undefined || add.stats === null || add.stats === "") return undefined
  try {
    const parsed = JSON.parse(add.stats) as FileStats
    return typeof parsed.numRecords === "number" ? parsed : undefined
  } catch {
    return undefined
  }
}
