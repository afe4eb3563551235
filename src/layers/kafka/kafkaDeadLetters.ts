import { Effect, Layer } from "effect"
import { DeadLetters } from "../../services/DeadLetters.ts"
import { BrokerError } from "../../services/errors.ts"
import { KafkaProducer } from "./kafkaClient.ts"

/** The original key and bytes, the original headers, and why: `dlq-reason`, `dlq-detail`, source position. */
export const kafkaDeadLetters = (topic: string) =>
  Layer.effect(
    DeadLetters,
    Effect.gen(function*() {
      const { producer } = yield* KafkaProducer
      return DeadLetters.of({
        publish: (letters) =>
          Effect.tryPromise({
            try: () =>
              producer.send({
                topic,
                acks: -1,
                messages: letters.map((letter) => ({
                  key: letter.message.key === null ? null : Buffer.from(letter.message.key),
                  value: letter.message.value === null ? null : Buffer.from(letter.message.value),
                  headers: {
                    ...letter.message.headers,
                    "dlq-reason": letter.rejection.reason,
                    "dlq-detail": letter.rejection.detail.slice(0, 2000),
                    "dlq-source-topic": letter.source.topic,
                    "dlq-source-partition": String(letter.source.partition),
                    "dlq-source-offset": letter.message.offset.toString()
                  }
                }))
              }),
            catch: (cause) => new BrokerError({ operation: "publish", cause })
          }).pipe(Effect.asVoid)
      })
    })
  )
