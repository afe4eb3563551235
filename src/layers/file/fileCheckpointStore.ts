import { Effect, Layer, Option } from "effect"
import * as Path from "node:path"
import { Checkpoint, emptyCheckpoint } from "../../domain/Checkpoint.ts"
import { CheckpointStore } from "../../services/CheckpointStore.ts"
import { StorageError } from "../../services/errors.ts"
import { jsonFile } from "./jsonFile.ts"

/** `offsets.json` under `streaming.checkpoint_location`: per-partition next offset and last key. */
export const fileCheckpointStore = (directory: string, topic: string) => {
  const path = Path.join(directory, "offsets.json")
  const file = jsonFile(path, Checkpoint)
  return Layer.succeed(CheckpointStore, CheckpointStore.of({
    load: Effect.flatMap(file.load, (loaded) => {
      const checkpoint = Option.getOrElse(loaded, () => emptyCheckpoint(topic))
      return checkpoint.topic === topic
        ? Effect.succeed(checkpoint)
        : Effect.fail(new StorageError({
          path,
          operation: "read",
          cause: `checkpoint belongs to topic ${checkpoint.topic}, not ${topic}; use another checkpoint_location`
        }))
    }),
    save: file.save
  }))
}
