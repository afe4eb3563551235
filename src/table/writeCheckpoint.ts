import { Effect } from "effect"
import { TableStorage } from "../services/TableStorage.ts"
import { encodeCheckpoint } from "./checkpointParquet.ts"
import { checkpointPath, lastCheckpointPath } from "./logFiles.ts"
import { checkpointActions, type Snapshot, withoutExpiredTombstones } from "./snapshot.ts"

const encoder = new TextEncoder()

/**
 * Writes the checkpoint of `snapshot` (PROTOCOL.md, "Checkpoints") and then points
 * `_last_checkpoint` at it. Only Spark writes checkpoints when Spark commits, so a table we write
 * alone would otherwise replay an ever longer JSON log. Idempotent: the same version gives the
 * same content, and a reader never relies on a checkpoint before `_last_checkpoint` names it or
 * the listing shows it whole.
 */
export const writeCheckpoint = (snapshot: Snapshot, tombstoneCutoffMs: number) =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const actions = checkpointActions(withoutExpiredTombstones(snapshot, tombstoneCutoffMs))
    const bytes = encodeCheckpoint(actions)
    yield* storage.write(checkpointPath(snapshot.version), bytes)
    yield* storage.write(
      lastCheckpointPath,
      encoder.encode(JSON.stringify({ version: snapshot.version, size: actions.length, sizeInBytes: bytes.byteLength, numOfAddFiles: snapshot.files.size }))
    )
    return { version: snapshot.version, actions: actions.length, bytes: bytes.byteLength }
  }).pipe(Effect.withSpan("Table.writeCheckpoint", { attributes: { version: snapshot.version } }))
