import type { CaptureKey } from "../domain/CaptureKey.ts"
import type { ChangeKey } from "../domain/Change.ts"
import { Micros } from "../domain/Timestamp.ts"
import type { Action } from "./actions.ts"
import type { Snapshot } from "./snapshot.ts"

/**
 * A consumer's position per Kafka partition lives in the table as `txn` actions (lake-table.md,
 * "Exactly-once"), committed in the same version as the files it covers. `<topic>-<partition>`
 * holds the next offset (as Spark's streaming sink would); two more hold the last producer capture
 * key, which a txn version (a long) can carry as its two numbers, and three the last change key of
 * logical capture (its commit LSN; its phase and sequence number as phase * 2^48 + seq; its epoch,
 * absent in tables written before epochs: 0).
 */
export const offsetAppId = (topic: string, partition: number) => `${topic}-${partition}`
const capturedAtAppId = (topic: string, partition: number) => `${topic}-${partition}.capture_created_at_us`
const captureIdAppId = (topic: string, partition: number) => `${topic}-${partition}.capture_order_id`
const changeLsnAppId = (topic: string, partition: number) => `${topic}-${partition}.change_lsn`
const changeSeqAppId = (topic: string, partition: number) => `${topic}-${partition}.change_seq`
const changeEpochAppId = (topic: string, partition: number) => `${topic}-${partition}.change_epoch`

const phaseUnit = 2 ** 48

export interface TablePosition {
  readonly nextOffset: bigint
  readonly lastCaptureKey: CaptureKey | null
  readonly lastChangeKey: ChangeKey | null
}

export const positionTxns = (topic: string, partition: number, position: TablePosition, now: number): ReadonlyArray<Action> => [
  { txn: { appId: offsetAppId(topic, partition), version: Number(position.nextOffset), lastUpdated: now } },
  ...(position.lastCaptureKey === null ? [] : [
    { txn: { appId: capturedAtAppId(topic, partition), version: Number(position.lastCaptureKey.created_at), lastUpdated: now } },
    { txn: { appId: captureIdAppId(topic, partition), version: position.lastCaptureKey.order_id, lastUpdated: now } }
  ]),
  ...(position.lastChangeKey === null ? [] : [
    { txn: { appId: changeLsnAppId(topic, partition), version: Number(position.lastChangeKey.lsn), lastUpdated: now } },
    {
      txn: {
        appId: changeSeqAppId(topic, partition),
        version: position.lastChangeKey.phase * phaseUnit + position.lastChangeKey.seq,
        lastUpdated: now
      }
    },
    { txn: { appId: changeEpochAppId(topic, partition), version: position.lastChangeKey.epoch, lastUpdated: now } }
  ])
]

/** Partitions of `topic` the table has positions for. */
export const tablePositions = (snapshot: Snapshot, topic: string): ReadonlyMap<number, TablePosition> => {
  const out = new Map<number, TablePosition>()
  const prefix = `${topic}-`
  for (const [appId, txn] of snapshot.txns) {
    if (!appId.startsWith(prefix)) continue
    const rest = appId.slice(prefix.length)
    if (!/^\d+$/.test(rest)) continue
    const partition = Number(rest)
    const createdAt = snapshot.txns.get(capturedAtAppId(topic, partition))
    const orderId = snapshot.txns.get(captureIdAppId(topic, partition))
    const changeLsn = snapshot.txns.get(changeLsnAppId(topic, partition))
    const changeSeq = snapshot.txns.get(changeSeqAppId(topic, partition))
    const changeEpoch = snapshot.txns.get(changeEpochAppId(topic, partition))
    out.set(partition, {
      nextOffset: BigInt(txn.version),
      lastCaptureKey: createdAt === undefined || orderId === undefined
        ? null
        : { created_at: Micros.make(BigInt(createdAt.version)), order_id: orderId.version },
      lastChangeKey: changeLsn === undefined || changeSeq === undefined
        ? null
        : {
          epoch: changeEpoch?.version ?? 0,
          lsn: BigInt(changeLsn.version),
          phase: changeSeq.version >= phaseUnit ? 1 : 0,
          seq: changeSeq.version >= phaseUnit ? changeSeq.version - phaseUnit : changeSeq.version
        }
    })
  }
  return out
}

/** The app ids a batch for this partition commits: another commit touching any of them conflicts with it. */
export const partitionAppIds = (topic: string, partition: number): ReadonlySet<string> =>
  new Set([
    offsetAppId(topic, partition),
    capturedAtAppId(topic, partition),
    captureIdAppId(topic, partition),
    changeLsnAppId(topic, partition),
    changeSeqAppId(topic, partition),
    changeEpochAppId(topic, partition)
  ])
