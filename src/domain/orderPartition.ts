/**
 * Which partition of a topic of `partitions` an order's messages go to: Kafka's default partitioner
 * (murmur2 of the key, the order_id as text, as the Java client and kafkajs's DefaultPartitioner),
 * so that the consumer of a partition knows which orders it carries (a truncate's marker empties
 * exactly those). test/unit/orderPartition.test.ts holds it equal to kafkajs's.
 */
export const partitionOfOrder = (orderId: number, partitions: number): number => partitionOfKey(String(orderId), partitions)

/** The default partitioner for any text key. */
export const partitionOfKey = (key: string, partitions: number): number => (murmur2(encoder.encode(key)) & 0x7fffffff) % partitions

const encoder = new TextEncoder()

/** Kafka's murmur2 (seed 0x9747b28c), 32-bit. */
const murmur2 = (data: Uint8Array): number => {
  const m = 0x5bd1e995
  const length = data.length
  let h = (0x9747b28c ^ length) | 0
  const whole = length & ~3
  for (let i = 0; i < whole; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    k = Math.imul(k, m)
    k ^= k >>> 24
    k = Math.imul(k, m)
    h = Math.imul(h, m) ^ k
  }
  const tail = length & 3
  if (tail === 3) h ^= data[whole + 2]! << 16
  if (tail >= 2) h ^= data[whole + 1]! << 8
  if (tail >= 1) h = Math.imul(h ^ data[whole]!, m)
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}
