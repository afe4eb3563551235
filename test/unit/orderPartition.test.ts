import { describe, expect, it } from "@effect/vitest"
import { Partitioners, type PartitionMetadata } from "kafkajs"
import { partitionOfOrder } from "../../src/domain/orderPartition.ts"

const metadata = (n: number): Array<PartitionMetadata> =>
  Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }))

describe("partitionOfOrder", () => {
  it("sends every order_id where the producer's partitioner (kafkajs DefaultPartitioner) does", () => {
    const kafkajs = Partitioners.DefaultPartitioner()
    const ids = [0, 1, 7, 42, 999, 1000, 65_535, 100_000, 123_456_789, 2 ** 31, 2 ** 53 - 1, -5]
    for (let i = 0; i < 5_000; i++) ids.push(Math.floor(Math.random() * 2 ** 40))
    for (const n of [1, 2, 3, 7, 12]) {
      const partitionMetadata = metadata(n)
      for (const id of ids) {
        const expected = kafkajs({ topic: "t", partitionMetadata, message: { key: String(id), value: null } })
        expect([id, partitionOfOrder(id, n)]).toEqual([id, expected])
      }
    }
  })
})
