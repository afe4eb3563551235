import { quoteIdentifier, type SqlIdentifier } from "../../config/Identifiers.ts"

/**
 * The capture horizon: no row below it can still be committed. Our DDL defaults created_at to the
 * inserting transaction's start (`now()` in UTC), so every row an open transaction may still commit
 * has created_at >= that transaction's xact_start. Reading only below the oldest open transaction in
 * this database (other than ours) therefore never passes a row that commits later — the late-commit
 * loss of `created_at > last` polling. Seeing other sessions' xact_start needs pg_read_all_stats.
 *
 * It must be its own statement, run before the read: a transaction that commits after the read's
 * snapshot but before pg_stat_activity is looked at would otherwise be neither visible nor open,
 * and the cursor would pass it (found by `npm run chaos`). Taken first, anything older than the
 * horizon has committed before the read's snapshot is taken. `now()` (this statement's start, before
 * pg_stat_activity is read) rather than clock_timestamp(), for the same reason.
 *
 * Two figures for monitoring ride along: how long the horizon has been held back (now - horizon) and
 * the newest order's created_at (an index-only look at the capture index), both in seconds.
 */
export const captureHorizonSql = (table: SqlIdentifier) =>
  `SELECT to_char(h.horizon, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS horizon,
    extract(epoch FROM (now() AT TIME ZONE 'utc') - h.horizon)::float8 AS held_back_seconds,
    extract(epoch FROM (SELECT max(o.created_at) FROM ${quoteIdentifier(table)} AS o))::float8 AS newest_seconds
  FROM (SELECT least(
    now() AT TIME ZONE 'utc',
    (SELECT min(xact_start) AT TIME ZONE 'utc' FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend' AND xact_start IS NOT NULL)
  ) AS horizon) AS h`

/**
 * Columns qualified with the table alias everywhere: a bare `created_at` in ORDER BY would name the
 * text column selected below, not the table's, and sort every batch instead of using the capture
 * index (a full scan per batch; found by `npm run bench`).
 */
const columns = `o.order_id, o.customer_name, o.restaurant_name, o.item, o.amount::text AS amount, o.order_status,
    to_char(o.created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at`

/**
 * Orders after the cursor `($1 created_at as ISO-8601 with zone, $2 order_id)`, below the horizon
 * `$3` (from captureHorizonSql), at most `$4`.
 */
export const captureAfterSql = (table: SqlIdentifier) =>
  `SELECT ${columns}
  FROM ${quoteIdentifier(table)} AS o
  WHERE (o.created_at, o.order_id) > (($1::timestamptz AT TIME ZONE 'utc'), $2::int)
    AND o.created_at < ($3::timestamptz AT TIME ZONE 'utc')
  ORDER BY o.created_at, o.order_id
  LIMIT $4`

/** The first batch, when there is no cursor yet: below the horizon `$1`, at most `$2`. */
export const captureFirstSql = (table: SqlIdentifier) =>
  `SELECT ${columns}
  FROM ${quoteIdentifier(table)} AS o
  WHERE o.created_at < ($1::timestamptz AT TIME ZONE 'utc')
  ORDER BY o.created_at, o.order_id
  LIMIT $2`

/** Whether this role can see other sessions' transactions, which the horizon depends on. */
export const canSeeOtherTransactionsSql = `SELECT (
    pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
    OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
  ) AS ok`

/** The oldest other open transaction in this database: what holds the horizon back. */
export const oldestOpenTransactionSql = `SELECT pid, application_name, state,
    extract(epoch FROM (now() - xact_start))::float8 AS seconds
  FROM pg_stat_activity
  WHERE datname = current_database() AND pid <> pg_backend_pid()
    AND backend_type = 'client backend' AND xact_start IS NOT NULL
  ORDER BY xact_start
  LIMIT 1`
