import { Effect, Either, Schedule } from "effect"
import { randomUUID } from "node:crypto"
import type { StorageError } from "../services/errors.ts"
import { TableStorage } from "../services/TableStorage.ts"
import { type Action, serializeCommit } from "./actions.ts"
import { engineInfo } from "./engine.ts"
import { commitPath } from "./logFiles.ts"
import { decodeCommit } from "./readLog.ts"
import { type Snapshot, SnapshotBuilder } from "./snapshot.ts"
import type { TableFormat } from "./tableFormat.ts"
import { CommitConflict, TableError } from "./tableErrors.ts"
import { writeProblem } from "./writeRules.ts"

export interface CommitRequest {
  readonly actions: ReadonlyArray<Action>
  /** For `DESCRIBE HISTORY`: STREAMING UPDATE, OPTIMIZE, CONVERT, ... */
  readonly operation: string
  readonly operationParameters?: Readonly<Record<string, string>>
  readonly isBlindAppend?: boolean
  /** The kind of table: the version we commit on must still be one we may write (writeRules.ts). */
  readonly format: TableFormat<any>
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

/** Times one version is written again while it stays free after a write whose outcome is unknown. */
const maxUnknownOutcomes = 3

/** Reading back a version after a failed write: the storage that just failed may need a moment. */
const readBackRetry = Schedule.exponential("50 millis").pipe(Schedule.intersect(Schedule.recurs(4)))

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)

type Placed =
  | { readonly ours: true }
  | { readonly ours: false; readonly actions: ReadonlyArray<Action>; readonly timestamp: number }

/**
 * Puts one version's bytes if absent, and says whose the version is. A write can land and still
 * fail (a connection cut after S3 applied the PUT, a directory fsync failing after the link), and a
 * write answered "taken" can have been taken by our own earlier request (a 409 then 412 on S3): so
 * the version is read back, and bytes equal to ours (unique by the commit's txnId) are our commit.
 * When the outcome cannot be known (the read-back fails too), the write's error is returned: the
 * caller must then assume the version may be ours and delete nothing it names.
 */
const placeVersion = (version: number, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const path = commitPath(version)
    for (let attempt = 1;; attempt++) {
      const written = yield* Effect.either(storage.writeIfAbsent(path, bytes))
      if (Either.isRight(written) && written.right) return { ours: true } as Placed
      const found = yield* storage.read(path).pipe(Effect.retry(readBackRetry), Effect.either)
      if (Either.isLeft(found)) return yield* Either.isLeft(written) ? written.left : found.left
      const unknown: StorageError | undefined = Either.isLeft(written) ? written.left : undefined
      if (found.right === null) {
        // Free after all: our write did not land (a put-if-absent that did is there to read). Again.
        if (unknown === undefined || attempt >= maxUnknownOutcomes) {
          return yield* unknown ?? new TableError({ reason: "corrupt", path: storage.locate(path), detail: "reported taken, but cannot be read" })
        }
        yield* Effect.logWarning("a commit's write failed before landing; writing the version again").pipe(
          Effect.annotateLogs({ version, error: unknown.message })
        )
        continue
      }
      if (sameBytes(found.right.bytes, bytes)) {
        if (unknown !== undefined || attempt > 1) {
          yield* Effect.logInfo("a commit reported as failed had landed: it is ours").pipe(
            Effect.annotateLogs({ version, ...(unknown === undefined ? {} : { error: unknown.message }) })
          )
        }
        return { ours: true } as Placed
      }
      const winner = yield* decodeCommit(path, found.right.bytes)
      return { ours: false, actions: winner, timestamp: found.right.modified } as Placed
    }
  })

/**
 * Commits actions as the version after `snapshot` (PROTOCOL.md, "Creation of New Log Entries"):
 * put-if-absent, so a version is written once, by one writer. When another writer took the
 * version, its commit is read and checked against ours; if they do not conflict we go after it,
 * else CommitConflict and nothing of ours is in the log. Before each write, the version we build
 * on must still be writable by us (a protocol, property or constraint another writer added is
 * refused with a TableError naming it). Returns the snapshot including our commit.
 *
 * Failures: CommitConflict and TableError mean nothing of ours is in the log (the caller may delete
 * the files it wrote for the commit); a StorageError means the outcome is unknown, and the files
 * must stay (vacuum removes them later if no version names them).
 */
export const commit = (snapshot: Snapshot, request: CommitRequest) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    // In commitInfo: makes the bytes of each attempt ours alone, so reading them back proves a write landed.
    const txnId = randomUUID()
    let current = snapshot
    for (let race = 0; race <= maxRaces; race++) {
      const version = current.version + 1
      const problem = current.version < 0 ? undefined : writeProblem(current, request.format, request.actions)
      if (problem !== undefined) {
        return yield* new TableError({ reason: problem.reason, path: storage.locate(commitPath(version)), detail: problem.detail })
      }
      const now = Date.now()
      const commitInfo: Action = {
        commitInfo: {
          timestamp: now,
          operation: request.operation,
          operationParameters: request.operationParameters ?? {},
          readVersion: snapshot.version,
          isolationLevel: "WriteSerializable",
          isBlindAppend: request.isBlindAppend ?? false,
          engineInfo,
          txnId
        }
      }
      const actions = [commitInfo, ...request.actions]
      const placed = yield* placeVersion(version, encoder.encode(serializeCommit(actions)))
      if (placed.ours) {
        return { version, snapshot: new SnapshotBuilder(current).apply(version, actions, now).build() }
      }
      const reason = structuralConflict(placed.actions) ?? request.conflictsWith(placed.actions)
      if (reason !== undefined) return yield* new CommitConflict({ version, detail: reason })
      current = new SnapshotBuilder(current).apply(version, placed.actions, placed.timestamp).build()
    }
    return yield* new CommitConflict({ version: current.version, detail: `lost the race for ${maxRaces} versions in a row` })
  })

/**
 * Whether a failed commit surely left nothing of ours in the log, so that the files written for it
 * may be deleted: a conflict or a table we may not write, as opposed to a StorageError (unknown).
 */
export const nothingCommitted = (error: { readonly _tag: string }): boolean => error._tag === "CommitConflict" || error._tag === "TableError"
