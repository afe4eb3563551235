import { Data } from "effect"

/** A configuration that cannot be used: names the file, the key (or environment variable) and why. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly file: string
  readonly key: string
  readonly reason: string
}> {
  override get message() {
    return `${this.file}: ${this.key}: ${this.reason}`
  }
}
