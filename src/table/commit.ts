import { Effect, Option } from "effect"
import { TableStorage } from "../services/TableStorage.ts"
import { type Action, serializeCommit } from "./actions.ts"
import { commitPath } from "./logFiles.ts"
import { readCommit } from "./readLog.ts"
import { type Snapshot, SnapshotBuilder } from "./snapshot.ts"
import { CommitConflict, TableError } from "./tableErrors.ts"

export const engineInfo = "food-orders-pipeline/0.1.0"

export interface CommitRequest {
  readonly actions: ReadonlyArray<Action>
  /** For `DESCRIBE HISTORY`: STREAMING UPDATE, OPTIMIZE, CONVERT, ... */
  readonly operation: string
  readonly operationParameters?: Readonly<Record<string, string>>
  readonly isBlindAppend?: boolean
  /**
   * Whether a commit that won the race for a version we wanted invalidates ours: a reason, or
   * undefined when ours can simply go after it. Any change of protocol or metadata always does.
   */
  readonly conflictsWith: (winner: ReadonlyArray<Action>) => string | undefined
}

const encoder = new TextEncoder()

/** Another commit between our snapshot and now may not touch what ours depends on. */
const structuralConflict = (winner: ReadonlyArray<Action>) =>
  winner.some((a) => "metaData" in a || "protocol" in a) ? "the table's protocol or metadata changed" : undefined

/** At most this many commits of others are stepped over before a commit gives up (and is retried by its caller). */
const maxRaces = 1000

/**
 * Commits actions as the version after `snapshot` (PROTOCOL.md, "Creation of New Log Entries"):
 * put-if-absent, so a version is written once, by one writer. When another writer took the
 * version, its commit is read and checked against ours; if they do not conflict we go after it,
 * else CommitConflict and nothing of ours is in the log. Returns the snapshot including our commit.
 */
export const commit = (snapshot: Snapshot, request: CommitRequest) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    let current = snapshot
    for (let race = 0; race <= maxRaces; race++) {
      const version = current.version + 1
      const now = Date.now()
      const commitInfo: Action = {
        commitInfo: {
          timestamp: now,
          operation: request.operation,
          operationParameters: request.operationParameters ?? {},
          readVersion: snapshot.version,
          isolationLevel: "WriteSerializable",
          isBlindAppend: request.isBlindAppend ?? false,
          engineInfo
        }
      }
      const actions = [commitInfo, ...request.actions]
      const written = yield* storage.writeIfAbsent(commitPath(version), encoder.encode(serializeCommit(actions)))
      if (written) {
        return { version, snapshot: new SnapshotBuilder(current).apply(version, actions, now).build() }
      }
      const winner = yield* readCommit(version)
      if (Option.isNone(winner)) {
        return yield* new TableError({ reason: "corrupt", path: storage.locate(commitPath(version)), detail: "exists but cannot be read back" })
      }
      const reason = structuralConflict(winner.value.actions) ?? request.conflictsWith(winner.value.actions)
      if (reason !== undefined) return yield* new CommitConflict({ version, detail: reason })
      current = new SnapshotBuilder(current).apply(version, winner.value.actions, winner.value.timestamp).build()
    }
    return yield* new CommitConflict({ version: current.version, detail: `lost the race for ${maxRaces} versions in a row` })
  })
