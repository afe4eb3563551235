import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { expect, it } from "vitest"
import { describeS3 } from "../support/endpoints.ts"

describeS3("the S3 server of the integration run", (s3, endpoints) => {
  it("answers a put-if-absent round trip with the keys it was given", async () => {
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }
    })
    const Key = `harness/${process.pid}-${Date.now()}`
    try {
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: "one", IfNoneMatch: "*" }))
      const second = await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key, Body: "two", IfNoneMatch: "*" })).then(
        () => 200,
        (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode
      )
      expect(second).toBe(412)
      const got = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key }))
      expect(await got.Body!.transformToString()).toBe("one")
      console.info(`[s3 harness] source=${endpoints.source} endpoint=${s3.endpoint} bucket=${s3.bucket}`)
    } finally {
      await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key })).catch(() => undefined)
      client.destroy()
    }
  })
})
