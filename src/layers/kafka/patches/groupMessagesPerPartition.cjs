// kafkajs 2.2.4's src/producer/groupMessagesPerPartition.js, linear: the original copies each
// partition's array for every message (`[...current, message]`), O(n²) in the batch size, which
// the benchmark measured at 6x slower publishing for batches of 20,000 (tulios/kafkajs PR 1576,
// never released). Same result: an object from partition to its messages, in order.
//
// scripts/build.mjs puts this module in place of the original when it bundles the programs;
// test/unit/kafkajsPatches.test.ts holds it equal to the original.
"use strict"

module.exports = ({ topic, partitionMetadata, messages, partitioner }) => {
  if (partitionMetadata.length === 0) {
    return {}
  }
  const result = {}
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message })
    const current = result[partition]
    if (current === undefined) result[partition] = [message]
    else current.push(message)
  }
  return result
}
