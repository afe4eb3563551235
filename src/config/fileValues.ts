import { Either } from "effect"
import { readFileSync } from "node:fs"

/**
 * The value of the environment variable `name`, or the content of the file `<name>_FILE` names (the
 * Docker and Kubernetes secrets convention; one trailing newline dropped, as secret files usually
 * end with one). Both set is refused: which one wins would be a guess. Left: why it cannot be used.
 */
export const envValueOrFile = (env: Readonly<Record<string, string | undefined>>, name: string): Either.Either<string | undefined, string> => {
  const file = env[`${name}_FILE`]
  const direct = env[name] === "" ? undefined : env[name]
  if (file === undefined || file === "") return Either.right(direct)
  if (direct !== undefined) return Either.left(`${name} is set too: set one of ${name} and ${name}_FILE`)
  try {
    return Either.right(readFileSync(file, "utf8").replace(/\r?\n$/, ""))
  } catch (error) {
    return Either.left(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
  }
}
