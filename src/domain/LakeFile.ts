/**
 * File names of the previous release's lake (before the Delta table): topic, Kafka partition and
 * the inclusive offset range of the batch, zero-padded. Converting such a lake needs them to tell
 * which files a crashed run wrote past its checkpoint.
 */
const pad = (offset: bigint) => offset.toString().padStart(20, "0")

export interface LakeFileId {
  readonly topic: string
  readonly partition: number
  readonly firstOffset: bigint
  readonly lastOffset: bigint
}

export const lakeFileName = (id: LakeFileId): string =>
  `part-${id.topic}-${id.partition}-${pad(id.firstOffset)}-${pad(id.lastOffset)}.parquet`

const namePattern = /^part-(.+)-(\d+)-(\d{20})-(\d{20})\.parquet$/

export const parseLakeFileName = (name: string): LakeFileId | undefined => {
  const m = namePattern.exec(name)
  return m === null
    ? undefined
    : { topic: m[1]!, partition: Number(m[2]), firstOffset: BigInt(m[3]!), lastOffset: BigInt(m[4]!) }
}
