import type { Layer } from "effect"
import type { StorageError } from "../../services/errors.ts"
import type { TableStorage } from "../../services/TableStorage.ts"
import { fileTableStorage } from "./fileTableStorage.ts"
import { isS3Path } from "./s3Location.ts"
import { type S3Settings, s3TableStorage } from "./s3TableStorage.ts"

/**
 * The storage a `datalake.path` names: `s3://bucket/prefix` (or Spark's `s3a://`) is an object store
 * configured from the AWS_* environment (s3SettingsFromEnv); anything else is a local directory.
 * Building the S3 layer checks the bucket: a permanent failure (missing bucket, refused keys) fails
 * at once with a hint, so the program stops instead of retrying.
 */
export const tableStorageFor = (path: string, s3Settings?: S3Settings): Layer.Layer<TableStorage, StorageError> =>
  isS3Path(path) ? s3TableStorage(path, s3Settings) : fileTableStorage(path)
