import { Context, type Effect, type Option } from "effect"
import type { CaptureKey } from "../domain/CaptureKey.ts"
import type { StorageError } from "./errors.ts"

/** The producer's position: the key of the last order acknowledged by the broker. */
export class CursorStore extends Context.Tag("CursorStore")<CursorStore, {
  readonly load: Effect.Effect<Option.Option<CaptureKey>, StorageError>
  readonly save: (cursor: CaptureKey) => Effect.Effect<void, StorageError>
}>() {}
