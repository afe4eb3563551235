import { Layer } from "effect"
import { CaptureKey } from "../../domain/CaptureKey.ts"
import { CursorStore } from "../../services/CursorStore.ts"
import { jsonFile } from "./jsonFile.ts"

/**
 * The cursor at `streaming.last_processed_timestamp_location`:
 * `{"created_at":"2025-01-15T12:24:00.123456Z","order_id":101}`.
 */
export const fileCursorStore = (path: string) => {
  const file = jsonFile(path, CaptureKey)
  return Layer.succeed(CursorStore, CursorStore.of({ load: file.load, save: file.save }))
}
