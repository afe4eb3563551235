/**
 * Lake file names say what they hold: topic, Kafka partition and the inclusive offset range of the
 * batch. Re-processing the same batch after a crash yields the same name, so the rename replaces
 * rather than duplicates. Offsets are zero-padded so names sort in stream order.
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

export const partitionDir = (date: string) => `date=${date}`
