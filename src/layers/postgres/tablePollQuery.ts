import { Effect } from "effect"
import type pg from "pg"
import { quoteTableRef, type TableRef } from "../../config/capturedTables.ts"
import type { TableSchema } from "../../domain/columns.ts"
import { CaptureError } from "./logical/CaptureError.ts"
import { describe, query } from "./logical/pgConnection.ts"

/**
 * Poll capture of a table beside the orders table (capture.mode poll): new rows by their key, taken
 * from the key column's sequence. Why a sequence, and how late commits are not passed:
 *
 * A key is handed out by nextval() inside the transaction that inserts the row, and that transaction
 * may commit long after a larger key was committed by another one: `key > last` alone loses it (the
 * late-commit loss of every JDBC-style incrementing poller). But nextval() first takes a lock on the
 * sequence that its transaction keeps to its end (sequence.c, lock_and_open_sequence: RowExclusiveLock
 * under the top transaction's resource owner), and PostgreSQL releases it after the commit is
 * visible. So each cycle reads the sequence's value `v` (one statement), then the transactions
 * holding its lock (the next statement): every key up to `v` was taken by one of those, or by a
 * transaction that has ended. Once none of those holds the lock any more, every row up to `v` is
 * committed (or rolled back) and visible to the next read, which goes up to the newest such `v`
 * only. Transactions that never touch the sequence never hold capture back, however long they run.
 *
 * This holds when every key comes from the sequence, one value at a time: a sequence with CACHE > 1
 * hands a session values below what the sequence shows, and is refused; keys given explicitly can
 * be missed and are reported (`keysAboveSequence`). A prepared transaction (two-phase commit) holding
 * the sequence holds every reading back until it is committed or rolled back.
 */

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`

/** Every value as PostgreSQL's text, as pgoutput sends it: one codec (pgText.ts) for every capture. */
const asText = { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig

const integerTypes = new Set(["smallint", "integer", "bigint"])

export interface PollKey {
  readonly column: string
  /** The sequence as `regclass` text (schema-qualified where needed). */
  readonly sequence: string
}

/** pg_get_serial_sequence covers serial columns and identity columns alike. */
const keySequenceSql = `SELECT pg_get_serial_sequence($1, $2) AS sequence`

const sequenceSettingsSql = `SELECT s.seqcache::text AS cache, s.seqincrement::text AS increment
  FROM pg_sequence s WHERE s.seqrelid = $1::regclass`

/**
 * The table's key column and its sequence, or why poll mode cannot capture the table safely: the key
 * must be one integer column whose values come from a sequence (serial or identity) with CACHE 1
 * that counts up.
 */
export const pollKeyOf = (pool: pg.Pool, table: TableRef, display: string, schema: TableSchema): Effect.Effect<PollKey, CaptureError> =>
  Effect.gen(function*() {
    const refuse = (detail: string) => new CaptureError({ reason: "misconfigured", detail: `${display} cannot be captured by capture.mode poll: ${detail}` })
    const logical = "; capture.mode logical captures any table with a key"
    if (schema.key.length !== 1) return yield* refuse(`its key has ${schema.key.length} columns (${schema.key.join(", ")}); poll mode needs one integer key column filled by a sequence${logical}`)
    const column = schema.columns.find((c) => c.name === schema.key[0])!
    if (!integerTypes.has(column.pgType)) return yield* refuse(`its key column ${column.name} is ${column.pgType}; poll mode needs smallint, integer or bigint filled by a sequence${logical}`)
    const [found] = yield* query<{ sequence: string | null }>(pool, keySequenceSql, [quoteTableRef(table), column.name])
    const sequence = found?.sequence ?? null
    if (sequence === null) {
      return yield* refuse(`its key column ${column.name} takes no values from a sequence (serial, or GENERATED ... AS IDENTITY)${logical}`)
    }
    const [settings] = yield* query<{ cache: string; increment: string }>(pool, sequenceSettingsSql, [sequence])
    if (settings !== undefined && BigInt(settings.increment) <= 0n) {
      return yield* refuse(`its sequence ${sequence} counts down (INCREMENT ${settings.increment}); poll mode reads keys in ascending order`)
    }
    if (settings !== undefined && BigInt(settings.cache) > 1n) {
      return yield* refuse(
        `its sequence ${sequence} has CACHE ${settings.cache}: sessions take keys below the value the sequence shows, so a late commit could be passed. ` +
          `Run: ALTER SEQUENCE ${sequence} CACHE 1`
      )
    }
    return { column: column.name, sequence }
  })

/**
 * The last value the sequence handed out (before any: one step below its start), as decimal text.
 * pg_sequence_last_value needs SELECT or USAGE on the sequence.
 */
const sequenceValue = `(SELECT coalesce(pg_sequence_last_value($1::regclass), s.seqstart - s.seqincrement)
  FROM pg_sequence s WHERE s.seqrelid = $1::regclass)`

const sequenceValueSql = `SELECT ${sequenceValue}::text AS value`

export const readSequenceValue = (pool: pg.Pool, key: PollKey) =>
  Effect.flatMap(query<{ value: string | null }>(pool, sequenceValueSql, [key.sequence]), ([row]) =>
    row === undefined || row.value === null
      ? Effect.fail(new CaptureError({ reason: "connection", detail: `sequence ${key.sequence} is gone` }))
      : Effect.succeed(BigInt(row.value)))

/**
 * The other transactions holding the sequence's lock (their virtual transaction ids), and whether a
 * prepared transaction does. pg_locks is readable by every role.
 */
const sequenceHoldersSql = `SELECT coalesce(array_agg(l.virtualtransaction) FILTER (WHERE l.pid IS NOT NULL AND l.pid <> pg_backend_pid()), '{}') AS holders,
    coalesce(bool_or(l.pid IS NULL), false) AS prepared
  FROM pg_locks l
  WHERE l.locktype = 'relation' AND l.granted AND l.relation = $1::regclass
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`

export interface SequenceHolders {
  readonly holders: ReadonlyArray<string>
  readonly prepared: boolean
}

export const readSequenceHolders = (pool: pg.Pool, key: PollKey) =>
  Effect.map(query<SequenceHolders>(pool, sequenceHoldersSql, [key.sequence]), ([row]) => row ?? { holders: [], prepared: false })

/**
 * Rows with `after < key <= bound`, in key order, at most `limit`, every value as PostgreSQL's text.
 * Only the schema's columns are selected: a column added since is announced, and read, next time.
 */
export const readRowsAfter = (
  pool: pg.Pool,
  table: TableRef,
  schema: TableSchema,
  key: PollKey,
  after: bigint | null,
  bound: bigint,
  limit: number
) => {
  const columns = schema.columns.map((c) => quoted(c.name)).join(", ")
  const k = quoted(key.column)
  // bigint parameters: integer_ops compares them with a smallint or integer key through its index.
  const text = after === null
    ? `SELECT ${columns} FROM ${quoteTableRef(table)} WHERE ${k} <= $1::bigint ORDER BY ${k} LIMIT $2`
    : `SELECT ${columns} FROM ${quoteTableRef(table)} WHERE ${k} > $2::bigint AND ${k} <= $1::bigint ORDER BY ${k} LIMIT $3`
  const values = after === null ? [String(bound), limit] : [String(bound), String(after), limit]
  return Effect.tryPromise({
    try: async () => (await pool.query<Record<string, string | null>>({ text, values, types: asText })).rows,
    catch: (cause) => new CaptureError({ reason: "connection", detail: `reading ${quoteTableRef(table)} failed`, cause: describe(cause) })
  })
}

/**
 * Whether the table holds a key above the sequence's value now: only an explicitly given key can be
 * there, and poll mode may pass such rows (or never reach them). An index-only look at the key.
 */
export const keysAboveSequence = (pool: pg.Pool, table: TableRef, key: PollKey) =>
  Effect.map(
    query<{ above: boolean | null }>(
      pool,
      `SELECT (SELECT max(${quoted(key.column)}) FROM ${quoteTableRef(table)}) >
        ${sequenceValue} AS above`,
      [key.sequence]
    ),
    ([row]) => row?.above === true
  )

/** The table's oid now (undefined when it does not exist): a new oid is a table dropped and created again. */
export const tableOidOf = (pool: pg.Pool, table: TableRef) =>
  Effect.map(
    query<{ oid: number | null }>(pool, "SELECT to_regclass($1)::oid::int AS oid", [quoteTableRef(table)]),
    ([row]) => row?.oid ?? undefined
  )
