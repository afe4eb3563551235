import { Deferred, Effect, Exit, Queue, Runtime, Schedule, type Duration } from "effect"
import { LogicalReplicationService, type Pgoutput } from "pg-logical-replication"
import { formatLsn, parseLsn } from "../../../domain/Change.ts"
import { CaptureError } from "./CaptureError.ts"
import { clientConfigOf, describe, type PgSettings } from "./pgConnection.ts"
import { TextPgoutputPlugin } from "./pgoutputDecoding.ts"
import { slotBusy } from "./replicationSlot.ts"

export type StreamItem =
  | { readonly _tag: "data"; readonly message: Pgoutput.Message }
  /** The server has sent everything before `walEnd` (its keepalive), queued behind the data before it. */
  | { readonly _tag: "keepalive"; readonly walEnd: bigint }

export interface ReplicationStream {
  /** The next message, in the order the server sent them; fails once the connection is gone. */
  readonly take: Effect.Effect<StreamItem, CaptureError>
  /** Messages received and not yet taken. */
  readonly waiting: Effect.Effect<number>
  /**
   * Confirms the slot up to `lsn`: `confirmed_flush_lsn` becomes exactly `lsn` (the library sends
   * its argument + 1, so it is given `lsn - 1`).
   */
  readonly confirm: (lsn: bigint) => Effect.Effect<void>
}

/** How many parsed messages may wait between the connection and the capture loop. */
const queueCapacity = 128

/**
 * The library runs the 'data' handlers of its queue one after another and keeps its socket paused
 * meanwhile; whether everything received has reached our queue is only visible in its private
 * fields. If they ever change, `false`: keepalives are then not used to confirm (only answered),
 * and our heartbeat messages, which come in order with the data, still move the slot.
 */
const libraryIdle = (service: LogicalReplicationService): boolean => {
  const internals = service as unknown as { _messageQueue?: unknown; _processing?: unknown }
  return Array.isArray(internals._messageQueue) && internals._messageQueue.length === 0 && internals._processing === false
}

const streamError = (slot: string, publication: string, cause: unknown): CaptureError => {
  const text = describe(cause)
  const busy = /is active for PID (\d+)/.exec(text)
  if (busy !== null) return slotBusy(slot, busy[1]!)
  if (/replication slot .* does not exist|can no longer get changes from replication slot|has been invalidated/.test(text)) {
    return new CaptureError({
      reason: "slot-lost",
      detail: `replication slot ${slot} is gone or invalidated: changes committed since the producer's last position may be missing. ` +
        `Re-snapshot: npm run producer -- --resnapshot`,
      cause: text
    })
  }
  if (/must be superuser or replication role|publication .* does not exist/.test(text)) {
    return new CaptureError({ reason: "misconfigured", detail: `cannot stream slot ${slot} with publication ${publication}`, cause: text })
  }
  return new CaptureError({ reason: "connection", detail: `replication connection of slot ${slot} lost`, cause: text })
}

/**
 * One replication connection, streaming `slot` from its confirmed position: a new library instance
 * each time (re-subscribing an instance restarts from the last LSN it received, skipping what was
 * not acknowledged). Acknowledgement is ours only (`auto: false`, `timeoutSeconds: 0`: the library's
 * timer would confirm everything received). Keepalives asking for a reply are answered with our own
 * confirmed position, and every `statusInterval` a status update asks the server for a keepalive,
 * which keeps the connection alive while the loop waits for the broker and lets an idle loop confirm.
 */
export const openReplicationStream = (
  settings: PgSettings,
  slot: string,
  publication: string,
  options: { readonly confirmed: bigint; readonly statusInterval: Duration.DurationInput }
) =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const queue = yield* Effect.acquireRelease(Queue.bounded<StreamItem>(queueCapacity), Queue.shutdown)
    const ended = yield* Deferred.make<never, CaptureError>()
    const started = yield* Deferred.make<void>()
    let confirmed = options.confirmed
    const service = new LogicalReplicationService(clientConfigOf(settings), {
      acknowledge: { auto: false, timeoutSeconds: 0 },
      flowControl: { enabled: true }
    })
    const fail = (cause: unknown) => Deferred.unsafeDone(ended, Exit.fail(streamError(slot, publication, cause)))
    const sendStatus = (ping: boolean) => {
      if (confirmed <= 0n) return
      service.acknowledge(formatLsn(confirmed - 1n), ping).catch(fail)
    }
    // A handler still waiting for room when the scope closes sees its offer interrupted by the queue's
    // shutdown. It must resolve: the library reports a rejected handler with emit('error'), and by then
    // destroy() has removed every listener, so the emit throws and the process died of an unhandled
    // rejection (a chaos run: the broker away, the queue full, then the connection cut). What was not
    // taken is sent again from the slot's confirmed position on the next connection.
    // With room in the queue the message goes in at once; only a full queue costs a fiber and a promise.
    service.on("data", (_lsn: string, message: Pgoutput.Message) => {
      const item: StreamItem = { _tag: "data", message }
      if (Queue.unsafeOffer(queue, item)) return
      return Runtime.runPromise(runtime)(Queue.offer(queue, item)).then(() => undefined, () => undefined)
    })
    service.on("heartbeat", (lsn: string, _timestamp: number, shouldRespond: boolean) => {
      if (shouldRespond) sendStatus(false)
      const walEnd = parseLsn(lsn)
      if (walEnd !== undefined && libraryIdle(service)) Queue.unsafeOffer(queue, { _tag: "keepalive", walEnd })
    })
    service.on("error", fail)
    service.on("start", () => Deferred.unsafeDone(started, Exit.void))
    yield* Effect.addFinalizer(() => Effect.promise(() => service.destroy().then(() => undefined, () => undefined)))
    const plugin = new TextPgoutputPlugin({ protoVersion: 1, publicationNames: [publication], messages: true })
    // No start LSN: the server starts at the slot's confirmed_flush_lsn.
    yield* Effect.tryPromise(() => service.subscribe(plugin, slot)).pipe(
      Effect.matchEffect({
        onFailure: (error) => Effect.sync(() => fail(error.error)),
        onSuccess: () => Effect.sync(() => fail(new Error("the server ended the replication stream")))
      }),
      Effect.forkScoped
    )
    yield* Effect.raceFirst(Deferred.await(started), Deferred.await(ended))
    yield* Effect.sync(() => sendStatus(true)).pipe(
      Effect.repeat(Schedule.spaced(options.statusInterval)),
      Effect.forkScoped
    )
    const take = Effect.flatMap(Deferred.poll(ended), (done) =>
      done._tag === "Some" ? Effect.flatMap(done.value, () => Effect.never) : Effect.raceFirst(Deferred.await(ended), Queue.take(queue)))
    return {
      take,
      waiting: Queue.size(queue),
      confirm: (lsn: bigint) =>
        Effect.sync(() => {
          if (lsn <= confirmed) return
          confirmed = lsn
          sendStatus(false)
        })
    } satisfies ReplicationStream
  })
