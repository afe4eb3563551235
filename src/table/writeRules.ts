import type { Action, Metadata, Protocol } from "./actions.ts"
import type { Snapshot } from "./snapshot.ts"
import type { TableFormat } from "./tableFormat.ts"

/**
 * What a writer must honour before it adds a version (PROTOCOL.md, "Writer Requirements" and each
 * table feature's section), checked against the version it builds on: at open, and again before every
 * commit, since a version another writer made meanwhile (Spark adding a CHECK constraint, turning on
 * change data feed or row tracking) binds our next commit as much as the first.
 *
 * We honour appendOnly (no data-changing remove) and write no column that has invariants, CHECK
 * constraints, generation expressions or identity: rather than evaluate Spark SQL expressions, a
 * table that uses any of those is refused for writing, with what to do about it.
 */
export interface WriteProblem {
  readonly reason: "unsupported" | "schema"
  readonly detail: string
}

/**
 * Writer features (protocol 7) whose rules our writes keep; each one's use in the table's metadata
 * is checked below. A feature listed but unused (a constraint dropped again) binds nothing.
 */
const writableFeatures = new Set(["appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns", "identityColumns", "columnMapping"])

const isTrue = (value: string | undefined) => value !== undefined && value.trim().toLowerCase() === "true"

const unsupported = (detail: string): WriteProblem => ({ reason: "unsupported", detail })

const protocolProblem = (protocol: Protocol | undefined): WriteProblem | undefined => {
  if (protocol === undefined) return undefined
  // Versions 3-6 name features (constraints, CDF, generated columns, column mapping, identity) that
  // only bind a writer when the metadata uses them: checked there.
  if (protocol.minWriterVersion > 7) return unsupported(`writer version ${protocol.minWriterVersion} is newer than this writer knows (7)`)
  const missing = (protocol.writerFeatures ?? []).filter((f) => !writableFeatures.has(f))
  if (missing.length > 0) {
    return unsupported(`the table needs writer features this writer does not implement: ${missing.join(", ")}; ` +
      `write it with Spark, or drop the features (ALTER TABLE ... DROP FEATURE) if it has no data that needs them`)
  }
  return undefined
}

/** Table properties that oblige every writer to do something we do not: the property, what it asks. */
const obligingProperties: ReadonlyArray<readonly [string, (value: string) => boolean, string]> = [
  ["delta.enableChangeDataFeed", isTrue, "change data feed (a writer must write the changed rows of every update and delete as cdc files)"],
  ["delta.enableInCommitTimestamps", isTrue, "in-commit timestamps (a writer must put a monotonic inCommitTimestamp first in every commit)"],
  ["delta.enableRowTracking", isTrue, "row tracking (a writer must assign row ids and row commit versions)"],
  ["delta.enableDeletionVectors", isTrue, "deletion vectors"],
  ["delta.enableTypeWidening", isTrue, "type widening"],
  ["delta.columnMapping.mode", (v) => v.trim().toLowerCase() !== "none", "column mapping"]
]

interface SchemaField {
  readonly name: string
  readonly metadata?: Readonly<Record<string, unknown>>
}

/** Column-level rules in the schema's field metadata we would have to enforce. */
const fieldRules: ReadonlyArray<readonly [string, string]> = [
  ["delta.invariants", "an invariant"],
  ["delta.generationExpression", "a generation expression (generated column)"],
  ["delta.identity.start", "identity"],
  ["delta.columnMapping.id", "column mapping"]
]

const metadataProblem = (metadata: Metadata): WriteProblem | undefined => {
  const configuration = metadata.configuration
  for (const [key, binds, what] of obligingProperties) {
    const value = configuration[key]
    if (value !== undefined && binds(value)) {
      return unsupported(`table property ${key}=${value} turns on ${what}, which this writer does not implement; ` +
        `ALTER TABLE ... UNSET TBLPROPERTIES ('${key}') or write the table with Spark`)
    }
  }
  const constraints = Object.keys(configuration).filter((key) => key.startsWith("delta.constraints."))
  if (constraints.length > 0) {
    return unsupported(`CHECK constraint ${constraints.map((key) => `${key.slice("delta.constraints.".length)} (${configuration[key]})`).join(", ")} ` +
      `is not enforced by this writer, so it does not write the table: ALTER TABLE ... DROP CONSTRAINT, or write the table with Spark`)
  }
  let fields: ReadonlyArray<SchemaField>
  try {
    fields = (JSON.parse(metadata.schemaString) as { fields?: ReadonlyArray<SchemaField> }).fields ?? []
  } catch {
    return { reason: "schema", detail: "schemaString is not JSON" }
  }
  for (const field of fields) {
    for (const [key, what] of fieldRules) {
      if (field.metadata?.[key] !== undefined) {
        return unsupported(`column ${field.name} has ${what} (${key}), which this writer does not enforce, so it does not write the table`)
      }
    }
  }
  return undefined
}

/** delta.appendOnly: a commit may not remove data (a compaction's dataChange=false swap is fine). */
const appendOnlyProblem = (metadata: Metadata, actions: ReadonlyArray<Action>): WriteProblem | undefined => {
  if (!isTrue(metadata.configuration["delta.appendOnly"])) return undefined
  const removal = actions.find((a) => "remove" in a && a.remove.dataChange)
  if (removal === undefined) return undefined
  return unsupported(`table property delta.appendOnly=true forbids removing or replacing rows, and this commit would ` +
    `(${(removal as { remove: { path: string } }).remove.path}): updates and deletes of logical capture need a table that is not ` +
    `append-only (ALTER TABLE ... SET TBLPROPERTIES ('delta.appendOnly' = 'false'))`)
}

/**
 * Why we may not commit `actions` on `snapshot`, or undefined. `actions` undefined: whether we may
 * write the table at all (at open).
 */
export const writeProblem = (snapshot: Snapshot, format: TableFormat<any>, actions?: ReadonlyArray<Action>): WriteProblem | undefined => {
  const metadata = snapshot.metadata
  if (metadata === undefined) return { reason: "unsupported", detail: "the table has no metaData" }
  const problem = protocolProblem(snapshot.protocol) ?? metadataProblem(metadata) ?? (actions === undefined ? undefined : appendOnlyProblem(metadata, actions))
  if (problem !== undefined) return problem
  if (metadata.format.provider !== "parquet") return unsupported(`data format ${metadata.format.provider}`)
  const difference = format.schemaDifference(metadata.schemaString, metadata.partitionColumns)
  return difference === undefined ? undefined : { reason: "schema", detail: `not the ${format.name} table: ${difference}` }
}
