/**
 * Delta Lake log actions (PROTOCOL.md, "Actions"), as plain data. One commit file holds one action
 * per line; a checkpoint holds the same actions as Parquet rows. Only the fields we read or write
 * are typed; anything else a writer such as Spark puts in an action is kept as it came.
 */

export interface Protocol {
  readonly minReaderVersion: number
  readonly minWriterVersion: number
  readonly readerFeatures?: ReadonlyArray<string>
  readonly writerFeatures?: ReadonlyArray<string>
}

export interface Format {
  readonly provider: string
  readonly options: Readonly<Record<string, string>>
}

export interface Metadata {
  readonly id: string
  readonly name?: string | null
  readonly description?: string | null
  readonly format: Format
  readonly schemaString: string
  readonly partitionColumns: ReadonlyArray<string>
  readonly configuration: Readonly<Record<string, string>>
  readonly createdTime?: number | null
}

export interface AddFile {
  /** A URI relative to the table root (or absolute), as written: the identity of the file in the log. */
  readonly path: string
  readonly partitionValues: Readonly<Record<string, string | null>>
  readonly size: number
  readonly modificationTime: number
  readonly dataChange: boolean
  /** JSON text: numRecords, minValues, maxValues, nullCount. Engines trust it, so exact or absent. */
  readonly stats?: string | null
  readonly tags?: Readonly<Record<string, string>> | null
}

export interface RemoveFile {
  readonly path: string
  readonly deletionTimestamp?: number | null
  readonly dataChange: boolean
  readonly extendedFileMetadata?: boolean | null
  readonly partitionValues?: Readonly<Record<string, string | null>> | null
  readonly size?: number | null
  readonly tags?: Readonly<Record<string, string>> | null
}

/** A writer's progress: the latest `version` per `appId` is the table's record of it. */
export interface Txn {
  readonly appId: string
  readonly version: number
  readonly lastUpdated?: number | null
}

export type CommitInfo = Readonly<Record<string, unknown>>

export type Action =
  | { readonly protocol: Protocol }
  | { readonly metaData: Metadata }
  | { readonly add: AddFile }
  | { readonly remove: RemoveFile }
  | { readonly txn: Txn }
  | { readonly commitInfo: CommitInfo }
  /** Actions of features we do not implement (cdc, domainMetadata, ...): kept, never interpreted. */
  | { readonly other: string; readonly value: unknown }

/** One commit file's text: an action per line. */
export const serializeCommit = (actions: ReadonlyArray<Action>): string =>
  actions.map((action) => ("other" in action ? JSON.stringify({ [action.other]: action.value }) : JSON.stringify(action)))
    .join("\n") + "\n"

export class LogParseError extends Error {}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const need = (ok: boolean, what: string) => {
  if (!ok) throw new LogParseError(what)
}

/**
 * One line of a commit file as an action. Checks what the table's meaning depends on (paths, sizes,
 * versions) so that a damaged file is reported, not half-applied.
 */
export const parseAction = (line: string): Action => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch (error) {
    throw new LogParseError(`not JSON (${(error as Error).message})`)
  }
  need(isRecord(parsed), "not a JSON object")
  const entries = Object.entries(parsed as Record<string, unknown>)
  need(entries.length === 1, `expected exactly one action per line, got keys ${JSON.stringify(Object.keys(parsed as object))}`)
  const [kind, value] = entries[0]!
  need(isRecord(value), `${kind}: expected an object`)
  const v = value as Record<string, unknown>
  switch (kind) {
    case "protocol":
      need(Number.isInteger(v["minReaderVersion"]) && Number.isInteger(v["minWriterVersion"]), "protocol: versions missing")
      return { protocol: v as unknown as Protocol }
    case "metaData":
      need(typeof v["id"] === "string" && typeof v["schemaString"] === "string", "metaData: id or schemaString missing")
      need(Array.isArray(v["partitionColumns"]), "metaData: partitionColumns missing")
      return {
        metaData: {
          ...(v as unknown as Metadata),
          format: isRecord(v["format"]) ? (v["format"] as unknown as Format) : { provider: "parquet", options: {} },
          configuration: isRecord(v["configuration"]) ? (v["configuration"] as Record<string, string>) : {}
        }
      }
    case "add":
      need(typeof v["path"] === "string" && v["path"] !== "", "add: path missing")
      need(typeof v["size"] === "number" && v["size"] >= 0, `add ${String(v["path"])}: size missing`)
      need(isRecord(v["partitionValues"]), `add ${String(v["path"])}: partitionValues missing`)
      need(typeof v["dataChange"] === "boolean", `add ${String(v["path"])}: dataChange missing`)
      if (v["deletionVector"] !== undefined && v["deletionVector"] !== null) {
        throw new LogParseError(`add ${String(v["path"])}: has a deletion vector (reader feature deletionVectors is not supported)`)
      }
      return { add: v as unknown as AddFile }
    case "remove":
      need(typeof v["path"] === "string" && v["path"] !== "", "remove: path missing")
      return { remove: { ...(v as unknown as RemoveFile), dataChange: v["dataChange"] !== false } }
    case "txn":
      need(typeof v["appId"] === "string" && Number.isSafeInteger(v["version"]), "txn: appId or version missing")
      return { txn: v as unknown as Txn }
    case "commitInfo":
      return { commitInfo: v }
    default:
      return { other: kind, value: v }
  }
}

/** A commit file's text as its actions; an error names the line that is wrong. */
export const parseCommit = (text: string): ReadonlyArray<Action> => {
  const lines = text.split("\n")
  const actions: Array<Action> = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === "") continue
    try {
      actions.push(parseAction(line))
    } catch (error) {
      throw new LogParseError(`line ${i + 1}: ${(error as Error).message}`)
    }
  }
  // An empty file would otherwise read as a valid version that changes nothing (lake-table.md).
  if (actions.length === 0) throw new LogParseError("empty commit (no actions)")
  return actions
}
