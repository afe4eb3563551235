import { Context, type Effect } from "effect"
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
  readonly publish: (orders: ReadonlyArray<Order>, options?: PublishOptions) => Effect.Effect<void, BrokerError>
}>() {}
