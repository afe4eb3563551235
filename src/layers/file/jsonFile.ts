import { Effect, Option, ParseResult, Schema } from "effect"
import { StorageError } from "../../services/errors.ts"
import { readFileIfExists, writeFileAtomic } from "./atomicWrite.ts"

/** A JSON state file validated by a schema: none when absent, an error naming the file when corrupt. */
export const jsonFile = <A, I>(path: string, schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(Schema.parseJson(schema))
  const encode = Schema.encodeSync(schema)
  return {
    load: Effect.flatMap(readFileIfExists(path), (text) => {
      if (text === null) return Effect.succeedNone
      const decoded = decode(text)
      return decoded._tag === "Right"
        ? Effect.succeed(Option.some(decoded.right))
        : Effect.fail(new StorageError({
          path,
          operation: "read",
          cause: `corrupt state file: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`
        }))
    }),
    save: (value: A) => writeFileAtomic(path, JSON.stringify(encode(value), null, 2) + "\n")
  }
}
