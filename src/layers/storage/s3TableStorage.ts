import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand
} from "@aws-sdk/client-s3"
import { Duration, Effect, Either, Layer, Schedule } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import * as Https from "node:https"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { envValueOrFile } from "../../config/fileValues.ts"
import { isPermanentStorageError, StorageError } from "../../services/errors.ts"
import { type StoredObject, TableStorage } from "../../services/TableStorage.ts"
import { classifyS3Error, codeOf, maskKeyId, type S3ErrorContext, statusOf } from "./s3Errors.ts"
import { keyOf, parseS3Location, type S3Location, urlOf } from "./s3Location.ts"

export interface S3Settings {
  /** A custom endpoint (S3Proxy, MinIO, ...); undefined: AWS itself. */
  readonly endpoint?: string | undefined
  /** Undefined: the SDK's chain (AWS_REGION, the profile); us-east-1 when an endpoint is set. */
  readonly region?: string | undefined
  /** Path-style URLs (`host/bucket/key`); S3Proxy and MinIO need them. Default: on with a custom endpoint. */
  readonly forcePathStyle?: boolean | undefined
  /** Explicit keys; undefined: the SDK's default provider chain (env, profiles, SSO, instance roles). */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | undefined
  /** PEM of the CAs to trust for an https endpoint (AWS_CA_BUNDLE); undefined: Node's bundled CAs. */
  readonly caBundle?: Buffer | undefined
  /**
   * Objects above this size go up in parts (default 32 MiB). Measured on S3Proxy: 64 MiB took 3.1 s
   * as one PUT and 1.2 s as 4 parts of 16 MiB, two at a time; below ~16 MiB one PUT is as fast.
   */
  readonly multipartThreshold?: number
  /** Part size of a multipart upload (default 16 MiB; S3's minimum is 5 MiB). */
  readonly partSize?: number
  /** ListObjectsV2 page size (default 1000, S3's maximum). */
  readonly pageSize?: number
  /** Where localPath keeps downloaded objects (default `<XDG cache>/food-orders-pipeline/lake-cache`). */
  readonly cacheDir?: string
  /** How long the start waits for an unreachable endpoint, logging each attempt (default 1 hour). */
  readonly startupWait?: Duration.DurationInput
}

const flag = (value: string | undefined): boolean | undefined => {
  if (value === undefined || value === "") return undefined
  if (/^(true|1|yes)$/i.test(value)) return true
  if (/^(false|0|no)$/i.test(value)) return false
  throw new Error(`AWS_S3_FORCE_PATH_STYLE must be true or false, not ${JSON.stringify(value)}`)
}

const fromEnvOrFile = (env: NodeJS.ProcessEnv, name: string): string | undefined => {
  const value = envValueOrFile(env, name)
  if (Either.isLeft(value)) throw new Error(`${name}_FILE: ${value.left}`)
  return value.right
}

/**
 * The ecosystem's variables: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (the SDK reads them too; we read
 * them to decide path-style and to name the endpoint in messages), AWS_REGION / AWS_DEFAULT_REGION,
 * AWS_S3_FORCE_PATH_STYLE, AWS_CA_BUNDLE (as the AWS CLI reads it; the JavaScript SDK does not).
 * Keys given as files (AWS_ACCESS_KEY_ID_FILE, AWS_SECRET_ACCESS_KEY_FILE, AWS_SESSION_TOKEN_FILE:
 * Docker and Kubernetes secrets) are used as given; otherwise credentials stay with the SDK's chain.
 */
export const s3SettingsFromEnv = (env: NodeJS.ProcessEnv = process.env): S3Settings => {
  const fromFiles = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"].some((name) => env[`${name}_FILE`])
  const accessKeyId = fromEnvOrFile(env, "AWS_ACCESS_KEY_ID")
  const secretAccessKey = fromEnvOrFile(env, "AWS_SECRET_ACCESS_KEY")
  const sessionToken = fromEnvOrFile(env, "AWS_SESSION_TOKEN")
  if (fromFiles && (accessKeyId === undefined || secretAccessKey === undefined)) {
    throw new Error("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together: set both (each directly or as *_FILE)")
  }
  const caFile = env["AWS_CA_BUNDLE"] || undefined
  let caBundle: Buffer | undefined
  if (caFile !== undefined) {
    try {
      caBundle = readFileSync(caFile)
    } catch (error) {
      throw new Error(`AWS_CA_BUNDLE: cannot read ${caFile} (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
    }
  }
  return {
    endpoint: env["AWS_ENDPOINT_URL_S3"] || env["AWS_ENDPOINT_URL"] || undefined,
    region: env["AWS_REGION"] || env["AWS_DEFAULT_REGION"] || undefined,
    forcePathStyle: flag(env["AWS_S3_FORCE_PATH_STYLE"]),
    credentials: fromFiles && accessKeyId !== undefined && secretAccessKey !== undefined
      ? { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) }
      : undefined,
    caBundle
  }
}

const credentialSourceOf = (settings: S3Settings): string => {
  if (settings.credentials !== undefined) return `the configured key ${maskKeyId(settings.credentials.accessKeyId)}`
  const envKey = process.env["AWS_ACCESS_KEY_ID"]
  if (envKey) return `the environment (AWS_ACCESS_KEY_ID=${maskKeyId(envKey)})`
  const profile = process.env["AWS_PROFILE"]
  if (profile) return `profile ${profile} (AWS_PROFILE)`
  return "the default credential chain (~/.aws profile default, SSO, container or instance role)"
}

export const defaultLakeCacheDir = (): string =>
  Path.join(process.env["XDG_CACHE_HOME"] || Path.join(Os.homedir(), ".cache"), "food-orders-pipeline", "lake-cache")

/** AWS under concurrent conditional writes may answer 409 ConditionalRequestConflict: try again. */
const conflictRetry = Schedule.exponential("50 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(6)))

const MiB = 1024 * 1024

/** The S3 client and everything derived from settings, shared by the layer and the startup probe. */
const makeClient = (location: S3Location, settings: S3Settings) => {
  const region = settings.region ?? (settings.endpoint !== undefined ? "us-east-1" : undefined)
  const client = new S3Client({
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    ...(region === undefined ? {} : { region }),
    forcePathStyle: settings.forcePathStyle ?? settings.endpoint !== undefined,
    ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
    // Connect fails fast on a wrong endpoint; the socket timeout leaves room for a 16 MiB part.
    requestHandler: {
      connectionTimeout: 5_000,
      requestTimeout: 120_000,
      ...(settings.caBundle === undefined ? {} : { httpsAgent: new Https.Agent({ keepAlive: true, ca: settings.caBundle }) })
    }
  })
  const context: S3ErrorContext = {
    endpoint: settings.endpoint ?? `https://s3.${region ?? "<region>"}.amazonaws.com`,
    bucket: location.bucket,
    region: region ?? "(from the AWS profile)",
    credentialSource: credentialSourceOf(settings)
  }
  return { client, context, region }
}

/**
 * A table under `s3://bucket/prefix` on S3 or an S3-compatible server. Put-if-absent is PutObject
 * with `If-None-Match: *` (412 when the key exists), atomic on AWS, MinIO and S3Proxy 4.x
 * (object-storage.md). The layer checks the bucket at start (a listing under the prefix): a missing
 * bucket or refused credentials fail at once with a permanent StorageError; an unreachable endpoint
 * is waited for.
 */
export const s3TableStorage = (path: string, given?: S3Settings) =>
  Layer.scoped(
    TableStorage,
    Effect.gen(function*() {
      const location = yield* Effect.try({
        try: () => parseS3Location(path),
        catch: (cause) => new StorageError({ path, operation: "open", cause, reason: "misconfigured", hint: "datalake.path must look like s3://bucket/prefix" })
      })
      const settings = given ?? (yield* Effect.try({
        try: () => s3SettingsFromEnv(),
        catch: (cause) => new StorageError({ path, operation: "open", cause, reason: "misconfigured" })
      }))
      const { client, context } = yield* Effect.acquireRelease(
        Effect.sync(() => makeClient(location, settings)),
        ({ client }) => Effect.sync(() => client.destroy())
      )
      const threshold = settings.multipartThreshold ?? 32 * MiB
      const partSize = Math.max(settings.partSize ?? 16 * MiB, 1)
      const pageSize = settings.pageSize ?? 1000
      const cacheDir = settings.cacheDir ?? defaultLakeCacheDir()
      const base = location.prefix === "" ? "" : `${location.prefix}/`

      const failure = (operation: StorageError["operation"], target: string) => (cause: unknown) =>
        new StorageError({ path: target, operation, cause, ...classifyS3Error(cause, context) })

      const send = <A>(operation: StorageError["operation"], target: string, call: (signal: AbortSignal) => Promise<A>) =>
        Effect.tryPromise({ try: call, catch: failure(operation, target) }).pipe(
          Effect.withSpan(`TableStorage.s3.${operation}`, { attributes: { path: target } })
        )

      const putWhole = (key: string, bytes: Uint8Array, ifAbsent: boolean) =>
        send("write", urlOf(location, key.slice(base.length)), (abortSignal) =>
          client.send(new PutObjectCommand({ Bucket: location.bucket, Key: key, Body: bytes, ...(ifAbsent ? { IfNoneMatch: "*" } : {}) }), { abortSignal }))

      /**
       * Parts of `partSize`, two at a time; CompleteMultipartUpload makes the object appear whole
       * (S3 never shows a partial object). On any failure or interruption the upload is aborted so
       * no parts are left to pay for.
       */
      const putMultipart = (key: string, bytes: Uint8Array, ifAbsent: boolean) => {
        const target = urlOf(location, key.slice(base.length))
        return Effect.gen(function*() {
          const created = yield* send("write", target, (abortSignal) =>
            client.send(new CreateMultipartUploadCommand({ Bucket: location.bucket, Key: key }), { abortSignal }))
          const uploadId = created.UploadId!
          const count = Math.ceil(bytes.byteLength / partSize)
          return yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
            send("write", target, (abortSignal) =>
              client.send(new UploadPartCommand({
                Bucket: location.bucket,
                Key: key,
                UploadId: uploadId,
                PartNumber: i + 1,
                Body: bytes.subarray(i * partSize, Math.min((i + 1) * partSize, bytes.byteLength))
              }), { abortSignal })).pipe(Effect.map((part) => ({ PartNumber: i + 1, ETag: part.ETag! }))), { concurrency: 2 }).pipe(
            Effect.flatMap((parts) =>
              send("write", target, (abortSignal) =>
                client.send(new CompleteMultipartUploadCommand({
                  Bucket: location.bucket,
                  Key: key,
                  UploadId: uploadId,
                  MultipartUpload: { Parts: parts },
                  ...(ifAbsent ? { IfNoneMatch: "*" } : {})
                }), { abortSignal }))
            ),
            Effect.onExit((exit) =>
              exit._tag === "Success" ? Effect.void : Effect.promise(() =>
                client.send(new AbortMultipartUploadCommand({ Bucket: location.bucket, Key: key, UploadId: uploadId })).catch(() => undefined)
              )
            )
          )
        }).pipe(Effect.annotateLogs({ key, bytes: bytes.byteLength }))
      }

      const put = (key: string, bytes: Uint8Array, ifAbsent: boolean) =>
        bytes.byteLength > threshold ? putMultipart(key, bytes, ifAbsent) : putWhole(key, bytes, ifAbsent)

      const getObject = (path: string) =>
        send("read", urlOf(location, path), async (abortSignal) => {
          try {
            const got = await client.send(new GetObjectCommand({ Bucket: location.bucket, Key: keyOf(location, path) }), { abortSignal })
            const bytes = await got.Body!.transformToByteArray()
            return { bytes, modified: got.LastModified?.getTime() ?? Date.now() }
          } catch (error) {
            if (codeOf(error) === "NoSuchKey") return null
            throw error
          }
        })

      const storage = TableStorage.of({
        root: urlOf(location),
        locate: (path) => urlOf(location, path),
        read: getObject,
        write: (path, bytes) => put(keyOf(location, path), bytes, false).pipe(Effect.asVoid),
        writeIfAbsent: (path, bytes) => {
          const key = keyOf(location, path)
          return put(key, bytes, true).pipe(
            Effect.as(true),
            Effect.retry({ schedule: conflictRetry, while: (error) => codeOf(error.cause) === "ConditionalRequestConflict" || statusOf(error.cause) === 409 }),
            Effect.catchIf(
              (error) => statusOf(error.cause) === 412 || codeOf(error.cause) === "PreconditionFailed",
              (error) =>
                // A 412 after the SDK retried may answer our own first attempt, which did land:
                // then the object holds our bytes and the write is ours.
                ((error.cause as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1) > 1
                  ? getObject(path).pipe(Effect.map((existing) => existing !== null && Buffer.from(existing.bytes).equals(Buffer.from(bytes))))
                  : Effect.succeed(false)
            )
          )
        },
        list: (prefix) =>
          Effect.gen(function*() {
            const out: Array<StoredObject> = []
            let token: string | undefined
            do {
              const page = yield* send("list", urlOf(location, prefix), (abortSignal) =>
                client.send(new ListObjectsV2Command({
                  Bucket: location.bucket,
                  Prefix: base + prefix,
                  MaxKeys: pageSize,
                  ...(token === undefined ? {} : { ContinuationToken: token })
                }), { abortSignal }))
              for (const object of page.Contents ?? []) {
                const key = object.Key ?? ""
                // Folder markers made by consoles and some tools are not files of the table.
                if (!key.startsWith(base) || key.endsWith("/")) continue
                out.push({ path: key.slice(base.length), size: object.Size ?? 0, modified: object.LastModified?.getTime() ?? 0 })
              }
              token = page.IsTruncated ? page.NextContinuationToken : undefined
            } while (token !== undefined)
            return out
          }),
        remove: (path) =>
          send("remove", urlOf(location, path), (abortSignal) =>
            client.send(new DeleteObjectCommand({ Bucket: location.bucket, Key: keyOf(location, path) }), { abortSignal }).then(
              () => undefined,
              (error) => {
                if (codeOf(error) === "NoSuchKey") return undefined
                throw error
              }
            )),
        localPath: (path) => {
          const target = Path.join(cacheDir, location.bucket, ...keyOf(location, path).split("/"))
          return Effect.promise(() => Fs.access(target).then(() => true, () => false)).pipe(
            Effect.flatMap((cached) =>
              cached ? Effect.succeed(target) : getObject(path).pipe(
                Effect.flatMap((object) =>
                  Effect.tryPromise({
                    try: async () => {
                      if (object === null) throw new Error(`no such object: ${urlOf(location, path)}`)
                      // Written under a unique name and renamed: two readers never see half a file.
                      await Fs.mkdir(Path.dirname(target), { recursive: true })
                      const temporary = `${target}.${process.pid}-${randomBytes(4).toString("hex")}.partial`
                      await Fs.writeFile(temporary, object.bytes)
                      await Fs.rename(temporary, target)
                      return target
                    },
                    catch: (cause) => new StorageError({ path: urlOf(location, path), operation: "read", cause })
                  })
                )
              )
            )
          )
        }
      })

      yield* Effect.logInfo("lake on S3").pipe(Effect.annotateLogs({
        endpoint: context.endpoint,
        bucket: location.bucket,
        prefix: location.prefix,
        region: context.region,
        credentials: context.credentialSource
      }))
      yield* probeBucket(client, location, context, failure("open", urlOf(location)), settings.startupWait ?? "1 hour")
      return storage
    })
  )

/**
 * One ListObjectsV2 under the table's prefix before the table opens (not HeadBucket: its errors have
 * no body, so a wrong secret and a missing permission both read as a bare 403). A permanent failure (no bucket, refused keys, clock skew,
 * wrong region) stops the program with its hint at once; an unreachable endpoint is waited for
 * with capped backoff and a warning per attempt, up to `wait`.
 */
const probeBucket = (
  client: S3Client,
  location: S3Location,
  context: S3ErrorContext,
  failure: (cause: unknown) => StorageError,
  wait: Duration.DurationInput
) =>
  Effect.tryPromise({
    try: (abortSignal) =>
      client.send(new ListObjectsV2Command({ Bucket: location.bucket, Prefix: location.prefix === "" ? "" : `${location.prefix}/`, MaxKeys: 1 }), { abortSignal }),
    catch: failure
  }).pipe(
    Effect.tapError((error) =>
      isPermanentStorageError(error) ? Effect.void : Effect.logWarning("waiting for the lake's object store").pipe(
        Effect.annotateLogs({ endpoint: context.endpoint, bucket: location.bucket, error: error.message })
      )
    ),
    Effect.retry({
      schedule: Schedule.exponential("250 millis", 2).pipe(
        Schedule.either(Schedule.spaced("10 seconds")),
        Schedule.jittered,
        Schedule.upTo(wait)
      ),
      while: (error) => !isPermanentStorageError(error)
    }),
    Effect.asVoid
  )
