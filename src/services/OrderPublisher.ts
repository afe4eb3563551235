import { Context, type Effect } from "effect"
import type { OrderChange } from "../domain/Change.ts"
import type { Order } from "../domain/Order.ts"
import type { BrokerError } from "./errors.ts"

export interface PublishOptions {
  /**
   * More orders were waiting in the source when this batch was read (it filled its read): the last
   * message carries `backlogHeader`, so the consumer keeps filling its batch instead of flushing.
   */
  readonly backlog?: boolean
}

/** Publishes orders to the raw topic; succeeds only once every message is acknowledged. */
export class OrderPublisher extends Context.Tag("OrderPublisher")<OrderPublisher, {
  /** Poll capture: new orders, in capture-key order. */
  readonly publish: (orders: ReadonlyArray<Order>, options?: PublishOptions) => Effect.Effect<void, BrokerError>
  /**
   * Logical capture: changes in change-key order (src/domain/Change.ts), so each partition receives
   * its changes in increasing change_key order; a delete is a tombstone (null value).
   */
  readonly publishChanges: (changes: ReadonlyArray<OrderChange>, options?: PublishOptions) => Effect.Effect<void, BrokerError>
}>() {}
