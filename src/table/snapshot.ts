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

/** Replays commits onto a snapshot without copying per commit: for reading a long log at once. */
export class SnapshotBuilder {
  version: number
  protocol: Protocol | undefined
  metadata: Metadata | undefined
  timestamp: number
  readonly files: Map<string, AddFile>
  readonly tombstones: Map<string, RemoveFile>
  readonly txns: Map<string, Txn>

  constructor(from: Snapshot = emptySnapshot) {
    this.version = from.version
    this.protocol = from.protocol
    this.metadata = from.metadata
    this.timestamp = from.timestamp
    this.files = new Map(from.files)
    this.tombstones = new Map(from.tombstones)
    this.txns = new Map(from.txns)
  }

  apply(version: number, actions: ReadonlyArray<Action>, timestamp: number): this {
    for (const action of actions) {
      if ("add" in action) {
        this.files.set(action.add.path, action.add)
        this.tombstones.delete(action.add.path)
      } else if ("remove" in action) {
        this.files.delete(action.remove.path)
        this.tombstones.set(action.remove.path, action.remove)
      } else if ("txn" in action) {
        this.txns.set(action.txn.appId, action.txn)
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

  build(): Snapshot {
    return {
      version: this.version,
      protocol: this.protocol,
      metadata: this.metadata,
      files: new Map(this.files),
      tombstones: new Map(this.tombstones),
      txns: new Map(this.txns),
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
