import { Context, type Effect, type Stream } from "effect"
import type { CaptureKey } from "../domain/CaptureKey.ts"
import type { Order } from "../domain/Order.ts"
import type { SourceError } from "./errors.ts"

/** Committed orders in capture-key order, strictly after a cursor. */
export class OrderSource extends Context.Tag("OrderSource")<OrderSource, {
  /**
   * At most `limit` orders with a key above `after` (all when `after` is null), ascending.
   * Only orders no open transaction can still precede are returned, so a later read never
   * yields a key at or below the last one returned.
   */
  readonly readAfter: (after: CaptureKey | null, limit: number) => Effect.Effect<ReadonlyArray<Order>, SourceError>
  /**
   * Emits when new orders may have committed, so capture need not wait for its poll interval.
   * A hint only: it may be silent (no trigger installed) or fire for nothing.
   */
  readonly changes: Stream.Stream<void, SourceError>
}>() {}
