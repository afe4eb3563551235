import { FileSystem } from "@effect/platform"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as Path from "node:path"
import * as Yaml from "yaml"
import { ConfigError } from "./ConfigError.ts"
import { connectionSecurityProblem } from "./connectionSecurityChecks.ts"
import { envValueOrFile } from "./fileValues.ts"
import { capturedTableOf, isOrdersEntry, TableEntry } from "./capturedTables.ts"
import { changesPathOf, dlqTopicOf, PipelineConfig } from "./PipelineConfig.ts"
import { minimumRetentionMinutes } from "../table/retention.ts"

export const defaultConfigFile = "configs/orders_stream.yml"

/** Every key that the environment may override, and the variable that does it (`SECTION_KEY`). */
export const overridableKeys: ReadonlyArray<readonly [section: string, key: string]> = [
  ["postgres", "jdbc_url"], ["postgres", "host"], ["postgres", "port"], ["postgres", "db"],
  ["postgres", "user"], ["postgres", "password"], ["postgres", "table"],
  ["postgres", "sslmode"], ["postgres", "sslrootcert"], ["postgres", "sslcert"], ["postgres", "sslkey"], ["postgres", "sslpassword"],
  ["kafka", "brokers"], ["kafka", "topic"], ["kafka", "dlq_topic"], ["kafka", "consumer_group"], ["kafka", "client_id"], ["kafka", "partitions"],
  ["kafka", "security_protocol"], ["kafka", "sasl_mechanism"], ["kafka", "sasl_username"], ["kafka", "sasl_password"],
  ["kafka", "ssl_ca_location"], ["kafka", "ssl_certificate_location"], ["kafka", "ssl_key_location"], ["kafka", "ssl_key_password"],
  ["kafka", "ssl_endpoint_identification_algorithm"],
  ["datalake", "path"], ["datalake", "format"],
  ["streaming", "checkpoint_location"], ["streaming", "last_processed_timestamp_location"], ["streaming", "batch_interval"],
  ["capture", "mode"], ["capture", "slot"], ["capture", "publication"], ["capture", "snapshot_chunk"],
  ["capture", "heartbeat_seconds"], ["capture", "slot_lag_warn_mb"],
  ["producer", "batch_size"], ["consumer", "max_batch_messages"], ["consumer", "max_batch_bytes"], ["consumer", "max_batch_changes"], ["consumer", "linger_ms"], ["consumer", "backlog_linger_ms"],
  ["table", "checkpoint_interval"], ["table", "retention_minutes"], ["table", "compaction"], ["table", "target_file_mb"],
  ["table", "compaction_fan_in"], ["table", "vacuum_interval_minutes"], ["table", "idle_compaction_seconds"],
  ["table", "allow_short_retention"], ["table", "foreign_file_retention_hours"],
  ["observability", "producer_port"], ["observability", "consumer_port"], ["observability", "progress_interval"],
  ["observability", "bind_address"], ["observability", "basic_auth_user"], ["observability", "basic_auth_password"]
]

export const envName = (section: string, key: string) => `${section}_${key}`.toUpperCase()

type Env = Readonly<Record<string, string | undefined>>
type Tree = Record<string, Record<string, unknown>>

/** libpq's URI parameters that map onto postgres keys; any other is refused rather than ignored. */
const pgUrlParameters = new Set(["sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword"])

/**
 * `PG_URL=postgres://user:pass@host:port/db[?sslmode=verify-full&sslrootcert=...]` (what `npm run
 * stack:up` prints, and the URI libpq takes) sets all connection keys.
 */
const pgUrlOverrides = (url: string): Either.Either<Record<string, string>, string> => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return Either.left("Expected postgres://user:password@host:port/db[?sslmode=...]")
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") return Either.left(`Expected a postgres:// or postgresql:// URL, got ${u.protocol}//...`)
  const db = decodeURIComponent(u.pathname.replace(/^\//, ""))
  const port = u.port === "" ? "5432" : u.port
  const keys: Record<string, string> = {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    db,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    jdbc_url: `jdbc:postgresql://${u.hostname}:${port}/${db}`
  }
  for (const [name, value] of u.searchParams) {
    if (!pgUrlParameters.has(name)) return Either.left(`Unknown parameter ${JSON.stringify(name)}; PG_URL takes ${[...pgUrlParameters].join(", ")}`)
    keys[name] = value
  }
  return Either.right(keys)
}

const applyOverrides = (tree: Tree, env: Env, file: string) => {
  const origins = new Map<string, string>()
  const set = (section: string, key: string, value: string, origin: string) => {
    const current = tree[section]
    tree[section] = { ...(typeof current === "object" && current !== null ? current : {}), [key]: value }
    origins.set(`${section}.${key}`, origin)
  }
  const pgUrl = env["PG_URL"]
  if (pgUrl !== undefined && pgUrl !== "") {
    const parsed = pgUrlOverrides(pgUrl)
    // The URL holds the password: the reason never quotes it.
    if (Either.isLeft(parsed)) return Either.left(new ConfigError({ file, key: "PG_URL (environment)", reason: parsed.left }))
    for (const [key, value] of Object.entries(parsed.right)) set("postgres", key, value, "PG_URL (environment)")
  }
  // A list does not fit SECTION_KEY: TABLES=a,schema.b lists the tables with their default settings.
  const tables = env["TABLES"]
  if (tables !== undefined && tables !== "") {
    ;(tree as Record<string, unknown>)["tables"] = tables.split(",").map((name) => ({ name: name.trim() }))
    origins.set("tables", "TABLES (environment)")
  }
  for (const [section, key] of overridableKeys) {
    const value = env[envName(section, key)]
    if (value !== undefined && value !== "") set(section, key, value, `${envName(section, key)} (environment)`)
  }
  return Either.right(origins)
}

/** The variables that may also come from a file as `<NAME>_FILE` (Docker and Kubernetes secrets). */
const fileVariables = ["PG_URL", ...overridableKeys.map(([section, key]) => envName(section, key))]

/**
 * `POSTGRES_PASSWORD_FILE=/run/secrets/pg` stands for POSTGRES_PASSWORD with the file's content; the
 * same for every variable above (fileValues.ts).
 */
const withFileValues = (env: Env, file: string): Either.Either<Env, ConfigError> => {
  const resolved: Record<string, string | undefined> = { ...env }
  for (const name of fileVariables) {
    if (env[`${name}_FILE`] === undefined || env[`${name}_FILE`] === "") continue
    const value = envValueOrFile(env, name)
    if (Either.isLeft(value)) return Either.left(new ConfigError({ file, key: `${name}_FILE (environment)`, reason: value.left }))
    resolved[name] = value.right
  }
  return Either.right(resolved)
}

const secretKeys = new Set(["password", "sslpassword", "sasl_password", "ssl_key_password", "basic_auth_password"])

/** A secret's value must not reach logs even when it is the wrong value. */
const describeIssue = (issue: ParseResult.ArrayFormatterIssue) =>
  issue._tag === "Missing"
    ? "is missing"
    : secretKeys.has(String(issue.path[issue.path.length - 1]))
    ? "Expected a string (value not shown: it is a secret)"
    : issue.message

/**
 * Reads the YAML file, applies environment overrides and validates everything at once.
 * Relative paths are resolved against the working directory.
 */
export const loadConfig = (file: string = defaultConfigFile, env: Env = process.env) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(file).pipe(
      Effect.mapError((cause) => new ConfigError({ file, key: "(file)", reason: `cannot read: ${cause.message}` }))
    )
    const document = Yaml.parseDocument(text)
    if (document.errors.length > 0) {
      const first = document.errors[0]!
      return yield* new ConfigError({ file, key: "(yaml)", reason: first.message })
    }
    const raw: unknown = document.toJS() ?? {}
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return yield* new ConfigError({ file, key: "(root)", reason: "Expected a mapping of sections" })
    }
    const tree = structuredClone(raw) as Tree
    const origins = yield* applyOverrides(tree, yield* withFileValues(env, file), file)
    const decoded = Schema.decodeUnknownEither(PipelineConfig, { errors: "all", onExcessProperty: "ignore" })(tree)
    if (Either.isLeft(decoded)) {
      const issues = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
      const first = issues[0]!
      const key = first.path.join(".")
      return yield* new ConfigError({
        file,
        key: origins.get(key) !== undefined ? `${key} from ${origins.get(key)}` : key,
        reason: issues.map((i) => `${i.path.join(".") === key ? "" : `${i.path.join(".")}: `}${describeIssue(i)}`).join("; ")
      })
    }
    const config = decoded.right
    if (config.table.retention_minutes < minimumRetentionMinutes && !config.table.allow_short_retention) {
      const origin = origins.get("table.retention_minutes")
      return yield* new ConfigError({
        file,
        key: `table.retention_minutes${origin === undefined ? "" : ` from ${origin}`}`,
        reason: `Expected at least ${minimumRetentionMinutes} minutes, got ${config.table.retention_minutes}: a shorter retention can ` +
          `vacuum files of a commit another consumer is still making, or of a version a reader is still reading. ` +
          `For tests and benchmarks set table.allow_short_retention: true (TABLE_ALLOW_SHORT_RETENTION=true)`
      })
    }
    const resolved = {
      ...config,
      // An object-store URL (s3://bucket/prefix) is not a path on this machine.
      datalake: { ...config.datalake, path: /^s3a?:\/\//i.test(config.datalake.path) ? config.datalake.path : Path.resolve(config.datalake.path) },
      streaming: {
        ...config.streaming,
        checkpoint_location: Path.resolve(config.streaming.checkpoint_location),
        last_processed_timestamp_location: Path.resolve(config.streaming.last_processed_timestamp_location)
      }
    } satisfies PipelineConfig
    const securityProblem = connectionSecurityProblem(resolved)
    if (securityProblem !== undefined) {
      const origin = origins.get(securityProblem.key)
      return yield* new ConfigError({ file, key: `${securityProblem.key}${origin === undefined ? "" : ` from ${origin}`}`, reason: securityProblem.reason })
    }
    const tablesProblem = checkTables(resolved, (tree as Record<string, unknown>)["tables"])
    if (tablesProblem !== undefined) {
      const origin = origins.get("tables")
      return yield* new ConfigError({ file, key: `${tablesProblem.key}${origin === undefined ? "" : ` from ${origin}`}`, reason: tablesProblem.reason })
    }
    return resolved
  })

const entryKeys = new Set(Object.keys(TableEntry.fields))

/**
 * What the schema cannot say of `tables:`: no unknown key in an entry (a misspelt `partition_by`
 * would silently leave a table unpartitioned), no table twice, no topic or table path shared with
 * another table.
 */
const checkTables = (config: PipelineConfig, raw: unknown): { key: string; reason: string } | undefined => {
  if (config.tables.length === 0) return undefined
  if (Array.isArray(raw)) {
    for (const [i, entry] of raw.entries()) {
      if (typeof entry !== "object" || entry === null) continue
      const unknown = Object.keys(entry).filter((key) => !entryKeys.has(key))
      if (unknown.length > 0) {
        return { key: `tables.${i}.${unknown[0]}`, reason: `Unknown key; an entry takes ${[...entryKeys].join(", ")}` }
      }
    }
  }
  const names = new Map<string, number>()
  const topics = new Map<string, string>([[config.kafka.topic, "the orders topic (kafka.topic)"], [dlqTopicOf(config), "the dead-letter topic"]])
  const paths = new Map<string, string>([[config.datalake.path, "the orders table (datalake.path)"], [changesPathOf(config), "the orders' history"]])
  for (const [i, entry] of config.tables.entries()) {
    if (isOrdersEntry(config, entry)) {
      if (Object.keys(entry).some((key) => key !== "name" && (entry as Record<string, unknown>)[key] !== undefined)) {
        return { key: `tables.${i}`, reason: `${entry.name} is the orders table (postgres.table): its topic, key and layout are the reference design's and take no options` }
      }
      continue
    }
    const table = capturedTableOf(config, entry)
    const seen = names.get(table.display)
    if (seen !== undefined) return { key: `tables.${i}.name`, reason: `${table.display} is listed twice (also tables.${seen})` }
    names.set(table.display, i)
    const topicOwner = topics.get(table.topic)
    if (topicOwner !== undefined) return { key: `tables.${i}.topic`, reason: `topic ${table.topic} is already ${topicOwner}: give the table its own` }
    topics.set(table.topic, `the topic of ${table.display}`)
    for (const path of [table.path, table.changesPath]) {
      const pathOwner = paths.get(path)
      if (pathOwner !== undefined) return { key: `tables.${i}.path`, reason: `${path} is already ${pathOwner}: give the table its own` }
      paths.set(path, `the table of ${table.display}`)
    }
  }
  return undefined
}
