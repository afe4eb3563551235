/**
 * Progress messages go to stderr: stdout is reserved for `KEY=value` endpoint lines,
 * so `eval "$(npm run -s stack:up)"` or `> .env` captures nothing else.
 */
export const say = (message: string): void => {
  process.stderr.write(`[stack] ${message}\n`)
}

/** A failure whose message is meant for a person: the CLI prints it without a stack trace. */
export class StackError extends Error {
  override readonly name = "StackError"
}
