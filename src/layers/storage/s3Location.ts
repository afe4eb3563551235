/** A table on S3: `s3://bucket/prefix` (Spark's `s3a://` too). The prefix has no leading or trailing `/`. */
export interface S3Location {
  readonly bucket: string
  readonly prefix: string
}

const scheme = /^s3a?:\/\//i

/** Whether a `datalake.path` names an object store rather than a directory. */
export const isS3Path = (path: string): boolean => scheme.test(path)

/** Bucket names per the S3 rules (3–63 characters, lowercase letters, digits, dots, hyphens). */
const bucketName = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** Parses `s3://bucket/some/prefix/`; throws with the path and what was expected. */
export const parseS3Location = (path: string): S3Location => {
  if (!isS3Path(path)) throw new Error(`${path} is not an s3:// or s3a:// path`)
  const rest = path.replace(scheme, "")
  const slash = rest.indexOf("/")
  const bucket = slash < 0 ? rest : rest.slice(0, slash)
  const prefix = slash < 0 ? "" : rest.slice(slash + 1).split("/").filter((part) => part.length > 0).join("/")
  if (!bucketName.test(bucket)) {
    throw new Error(`${path}: "${bucket}" is not a valid bucket name (3-63 characters: lowercase letters, digits, dots, hyphens)`)
  }
  return { bucket, prefix }
}

/** The object key of a table path: `<prefix>/<path>`. */
export const keyOf = (location: S3Location, path: string): string =>
  location.prefix === "" ? path : `${location.prefix}/${path}`

export const urlOf = (location: S3Location, path?: string): string =>
  path === undefined
    ? `s3://${location.bucket}${location.prefix === "" ? "" : `/${location.prefix}`}`
    : `s3://${location.bucket}/${keyOf(location, path)}`
