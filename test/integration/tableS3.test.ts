import { describeS3 } from "../support/endpoints.ts"
import { freshS3Storage } from "../support/s3Storage.ts"
import { tableCases } from "../support/tableCases.ts"

// The Delta table cases of test/unit/table.test.ts (memory), over a real S3 server.
describeS3("the Delta table on S3", (s3) => {
  tableCases({ name: "s3", fresh: freshS3Storage(s3, "table"), timeout: 60_000 })
})
