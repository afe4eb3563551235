import { Context, type Effect } from "effect"
import type { Order } from "../domain/Order.ts"
import type { BrokerError } from "./errors.ts"

/** Publishes orders to the raw topic; succeeds only once every message is acknowledged. */
export class OrderPublisher extends Context.Tag("OrderPublisher")<OrderPublisher, {
  readonly publish: (orders: ReadonlyArray<Order>) => Effect.Effect<void, BrokerError>
}>() {}
