import { Either, ParseResult } from "effect"
import { type Pgoutput, PgoutputPlugin } from "pg-logical-replication"
import { decodeOrderRows, type Order } from "../../../domain/Order.ts"

const keepText = (value: unknown) => value

/**
 * pgoutput with every column value left as the server's text. The library looks up `pg`'s global
 * type parsers, which turn TIMESTAMP into a Date (microseconds dropped, read in the process's time
 * zone); instead of mutating those globally, each relation's column parsers are replaced as the
 * relation is parsed, before any row that uses it (the library caches that same object).
 */
export class TextPgoutputPlugin extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer)
    if (message.tag === "relation") for (const column of message.columns) column.parser = keepText
    return message
  }
}

/** Type OIDs each contract column may have (varchar and text are the same to us). */
const int4 = 23
const int8 = 20
const varchar = 1043
const text = 25
const numeric = 1700
const timestamp = 1114

export const contractColumns: Readonly<Record<keyof Order, ReadonlyArray<number>>> = {
  order_id: [int4, int8],
  customer_name: [varchar, text],
  restaurant_name: [varchar, text],
  item: [varchar, text],
  amount: [numeric],
  order_status: [varchar, text],
  created_at: [timestamp]
}

export interface RelationColumnLike {
  readonly name: string
  readonly typeOid: number
}

export type RelationCheck =
  | { readonly ok: true; readonly extra: ReadonlyArray<string> }
  | { readonly ok: false; readonly problem: string }

/**
 * A relation message of the captured table against the contract's seven columns: an added column
 * is only reported (the messages keep the seven fields); a missing or retyped one stops capture,
 * since every message after it would be wrong.
 */
export const checkRelation = (columns: ReadonlyArray<RelationColumnLike>): RelationCheck => {
  const byName = new Map(columns.map((c) => [c.name, c.typeOid]))
  const problems: Array<string> = []
  for (const [name, allowed] of Object.entries(contractColumns)) {
    const oid = byName.get(name)
    if (oid === undefined) problems.push(`column ${name} is gone`)
    else if (!allowed.includes(oid)) problems.push(`column ${name} changed type (type oid ${oid}, expected one of ${allowed.join(", ")})`)
  }
  if (problems.length > 0) return { ok: false, problem: problems.join("; ") }
  return { ok: true, extra: columns.map((c) => c.name).filter((name) => !(name in contractColumns)) }
}

/**
 * TIMESTAMP text as the walsender prints it with DateStyle ISO (`2025-01-15 12:24:00.123456`),
 * as the ISO-8601 UTC text our capture query produces: created_at holds UTC (the DDL's default).
 */
export const timestampTextToIso = (value: string): string | undefined =>
  /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$/.test(value) ? `${value.replace(" ", "T")}Z` : undefined

const textOrNull = (value: unknown): unknown => value

/** order_id of a tuple (a row or a replica-identity key), or undefined. */
export const orderIdOf = (tuple: Record<string, unknown> | null | undefined): number | undefined => {
  const value = tuple?.["order_id"]
  if (typeof value !== "string" || !/^-?\d{1,15}$/.test(value)) return undefined
  return Number(value)
}

/**
 * The contract columns a row arrived without. pgoutput sends an unchanged value stored out of line
 * as "unchanged"; under REPLICA IDENTITY FULL the library fills it from the old row, otherwise it
 * stays undefined and the row cannot be published whole.
 */
export const missingColumns = (tuple: Record<string, unknown>): ReadonlyArray<string> =>
  Object.keys(contractColumns).filter((column) => tuple[column] === undefined)

/**
 * A row of pgoutput (all text) to an order, by the same rules as the poll query's rows
 * (decodeOrderRows): NUMERIC text to cents, TIMESTAMP text to microseconds. Left: why not.
 */
export const tupleToOrder = (tuple: Record<string, unknown>): Either.Either<Order, string> => {
  const orderId = orderIdOf(tuple)
  if (orderId === undefined) return Either.left(`order_id is not an integer: ${JSON.stringify(tuple["order_id"])}`)
  for (const column of Object.keys(contractColumns)) {
    // An unchanged TOASTed value arrives as undefined under REPLICA IDENTITY DEFAULT.
    if (tuple[column] === undefined) return Either.left(`column ${column} of order ${orderId} did not arrive (unchanged TOAST value?)`)
  }
  const createdAt = tuple["created_at"]
  const iso = typeof createdAt === "string" ? timestampTextToIso(createdAt) : undefined
  if (createdAt !== null && iso === undefined) return Either.left(`created_at of order ${orderId} is not a timestamp: ${JSON.stringify(createdAt)}`)
  const row = {
    order_id: orderId,
    customer_name: textOrNull(tuple["customer_name"]),
    restaurant_name: textOrNull(tuple["restaurant_name"]),
    item: textOrNull(tuple["item"]),
    amount: textOrNull(tuple["amount"]),
    order_status: textOrNull(tuple["order_status"]),
    created_at: createdAt === null ? null : iso
  }
  const decoded = decodeOrderRows([row])
  return Either.isRight(decoded)
    ? Either.right(decoded.right[0]!)
    : Either.left(`order ${orderId}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left)}`)
}
