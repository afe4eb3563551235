import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { startSpark } from "./spark.ts"

/** Spark's count and sum over the Delta table at `lake`, compared with what PostgreSQL holds. */
export const sparkAgrees = async (lake: string, expected: { readonly rows: number; readonly sum: string }): Promise<ReadonlyArray<string>> => {
  const spark = await startSpark()
  try {
    const result = await spark.sql(`SELECT count(*) AS n, CAST(sum(amount) AS STRING) AS total FROM delta.\`${lake}\``)
    const [n, total] = result.rows[0]!
    const problems: Array<string> = []
    if (Number(n) !== expected.rows) problems.push(`Spark counts ${String(n)} rows in the table, PostgreSQL has ${expected.rows}`)
    if (String(total ?? "0") !== expected.sum) problems.push(`Spark sums amount to ${String(total)}, PostgreSQL to ${expected.sum}`)
    return problems
  } finally {
    await spark.close()
  }
}

/** Commits of the table that were compactions (OPTIMIZE), from its log. */
export const compactionCommits = (lake: string): number => {
  const log = join(lake, "_delta_log")
  return readdirSync(log).filter((name) => /^\d{20}\.json$/.test(name))
    .filter((name) => readFileSync(join(log, name), "utf8").includes(`"operation":"OPTIMIZE"`)).length
}
