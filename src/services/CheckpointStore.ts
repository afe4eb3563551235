import { Context, type Effect } from "effect"
import type { Checkpoint } from "../domain/Checkpoint.ts"
import type { StorageError } from "./errors.ts"

/** The consumer's offsets and de-duplication keys, moved only after the lake files are in place. */
export class CheckpointStore extends Context.Tag("CheckpointStore")<CheckpointStore, {
  readonly load: Effect.Effect<Checkpoint, StorageError>
  readonly save: (checkpoint: Checkpoint) => Effect.Effect<void, StorageError>
}>() {}
