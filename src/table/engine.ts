/** Who wrote a commit or a Parquet file of the table, as other engines read it. */
const name = "food-orders-pipeline"
const version = "0.1.0"

/** commitInfo.engineInfo (Spark writes `Apache-Spark/4.0.1 Delta-Lake/4.0.0`). */
export const engineInfo = `${name}/${version}`

/**
 * The Parquet footer's created_by, in the form parquet-java's VersionParser accepts
 * (`<application> version <semver> (build <hash>)`): anything else makes Spark and Delta Kernel log a
 * VersionParseException with its stack trace on every file they open (PARQUET-251's check).
 */
export const parquetCreatedBy = `${name} version ${version} (build hyparquet-writer)`
