import { Context, type Effect } from "effect"
import type { TableChange } from "../domain/TableChange.ts"
import type { PublishOptions } from "./OrderPublisher.ts"
import type { BrokerError } from "./errors.ts"

/**
 * Publishes changes of the tables captured beside the orders table, each to its table's topic;
 * succeeds only once every message is acknowledged. Changes come in change-key order, so each
 * partition of each topic receives its changes in increasing change_key order; a delete is a
 * tombstone, and markers (schema, truncate) go to every partition of their topic.
 */
export class TableChangePublisher extends Context.Tag("TableChangePublisher")<TableChangePublisher, {
  readonly publish: (changes: ReadonlyArray<TableChange>, options?: PublishOptions) => Effect.Effect<void, BrokerError>
}>() {}
