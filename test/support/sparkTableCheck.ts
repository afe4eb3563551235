import { Effect, Logger, LogLevel } from "effect"
import { isS3Path, parseS3Location } from "../../src/layers/storage/s3Location.ts"
import { tableStorageFor } from "../../src/layers/storage/tableStorageFor.ts"
import { TableStorage } from "../../src/services/TableStorage.ts"
import { startSpark } from "./spark.ts"

/** Where Spark reads the table: a directory as it is, `s3://bucket/prefix` through S3A (settings from the AWS_* environment). */
const sparkLocation = (lake: string) => {
  if (!isS3Path(lake)) return { path: lake, options: {} }
  const { bucket, prefix } = parseS3Location(lake)
  const env = (name: string) => {
    const value = process.env[name]
    if (!value) throw new Error(`reading ${lake} with Spark needs ${name} in the environment`)
    return value
  }
  return {
    path: `s3a://${bucket}/${prefix}`,
    options: {
      s3: {
        endpoint: process.env["AWS_ENDPOINT_URL_S3"] ?? env("AWS_ENDPOINT_URL"),
        accessKeyId: env("AWS_ACCESS_KEY_ID"),
        secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
        region: process.env["AWS_REGION"] ?? "us-east-1"
      }
    }
  }
}

/** Spark's count and sum over the Delta table at `lake` (a directory or s3:// URL), compared with what PostgreSQL holds. */
export const sparkAgrees = async (
  lake: string,
  expected: { readonly rows: number; readonly sum: string; readonly tables?: ReadonlyArray<{ readonly path: string; readonly rows: number }> }
): Promise<ReadonlyArray<string>> => {
  const { path, options } = sparkLocation(lake)
  const spark = await startSpark(options)
  try {
    const result = await spark.sql(`SELECT count(*) AS n, CAST(sum(amount) AS STRING) AS total FROM delta.\`${path}\``)
    const [n, total] = result.rows[0]!
    const problems: Array<string> = []
    if (Number(n) !== expected.rows) problems.push(`Spark counts ${String(n)} rows in the table, PostgreSQL has ${expected.rows}`)
    if (String(total ?? "0") !== expected.sum) problems.push(`Spark sums amount to ${String(total)}, PostgreSQL to ${expected.sum}`)
    // Other tables of the run (tables:), in the same session: their row counts.
    for (const table of expected.tables ?? []) {
      const other = await spark.sql(`SELECT count(*) AS n FROM delta.\`${sparkLocation(table.path).path}\``)
      const count = Number(other.rows[0]![0])
      if (count !== table.rows) problems.push(`Spark counts ${count} rows in ${table.path}, PostgreSQL has ${table.rows}`)
    }
    return problems
  } finally {
    await spark.close()
  }
}

/** Commits of the table that were compactions (OPTIMIZE), from its log (a directory or s3:// URL). */
export const compactionCommits = (lake: string): Promise<number> =>
  Effect.gen(function*() {
    const storage = yield* TableStorage
    const commits = (yield* storage.list("_delta_log/")).filter((o) => /^_delta_log\/\d{20}\.json$/.test(o.path))
    let optimize = 0
    for (const commit of commits) {
      const read = yield* storage.read(commit.path)
      if (read !== null && new TextDecoder().decode(read.bytes).includes(`"operation":"OPTIMIZE"`)) optimize++
    }
    return optimize
  }).pipe(Effect.provide(tableStorageFor(lake)), Logger.withMinimumLogLevel(LogLevel.Warning), Effect.runPromise)
