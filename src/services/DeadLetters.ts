import { Context, type Effect } from "effect"
import type { Rejection } from "../domain/Rejection.ts"
import type { BrokerError } from "./errors.ts"
import type { RawMessage } from "./OrderStream.ts"

export interface DeadLetter {
  readonly source: { readonly topic: string; readonly partition: number }
  readonly message: RawMessage
  readonly rejection: Rejection
}

/** The dead-letter topic: original bytes, with the reason and source position in headers. */
export class DeadLetters extends Context.Tag("DeadLetters")<DeadLetters, {
  readonly publish: (letters: ReadonlyArray<DeadLetter>) => Effect.Effect<void, BrokerError>
}>() {}
