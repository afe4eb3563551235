import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Redacted } from "effect"
import { parseArgs } from "node:util"
import { defaultConfigFile, envName, loadConfig, overridableKeys } from "../config/loadConfig.ts"
import { consumerGroupOf, dlqTopicOf, type PipelineConfig } from "../config/PipelineConfig.ts"

const usage = `Usage: npm run config:check -- [--config FILE]

Loads the configuration the programs would use (the file plus environment overrides), validates it
and prints the resolved values with secrets redacted. Exits 1 with the file, key and reason when it
is invalid.`

const { values } = parseArgs({
  options: { config: { type: "string", default: defaultConfigFile }, help: { type: "boolean", default: false } }
})
if (values.help) {
  process.stdout.write(usage + "\n")
  process.exit(0)
}

const render = (value: unknown): string =>
  Redacted.isRedacted(value) ? "<redacted>" : typeof value === "string" ? value : JSON.stringify(value)

const resolvedLines = (config: PipelineConfig, env: NodeJS.ProcessEnv) => {
  const lines: Array<string> = []
  for (const [section, key] of overridableKeys) {
    const sectionValues = config[section as keyof PipelineConfig] as Record<string, unknown>
    const value = key === "dlq_topic" ? dlqTopicOf(config) : key === "consumer_group" ? consumerGroupOf(config) : sectionValues[key]
    const fromEnv = env[envName(section, key)] !== undefined && env[envName(section, key)] !== ""
      ? `  (from ${envName(section, key)})`
      : section === "postgres" && env["PG_URL"] ? "  (PG_URL may set this)" : ""
    lines.push(`${`${section}.${key}`.padEnd(46)} ${render(value)}${fromEnv}`)
  }
  return lines
}

const main = Effect.gen(function*() {
  const config = yield* loadConfig(values.config)
  process.stdout.write(`${values.config}: valid\n\n${resolvedLines(config, process.env).join("\n")}\n`)
})

main.pipe(
  Effect.catchTag("ConfigError", (error) =>
    Effect.sync(() => {
      process.stderr.write(`invalid configuration: ${error.message}\n`)
      process.exitCode = 1
    })),
  Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(Cause.pretty(cause) + "\n"))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
