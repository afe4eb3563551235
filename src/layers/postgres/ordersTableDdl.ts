/**
 * DDL of the orders source table for any table name, so tests can create one table per test.
 * Keep in sync with db/001_orders.sql, which holds the same DDL for the reference table
 * "2025em1100506_orders"; test/integration/harness.test.ts checks that both give the same columns.
 */

/** Plain identifiers only: the name is spliced into SQL (always double-quoted, since it may start with a digit). */
const TABLE_NAME = /^[A-Za-z0-9_]{1,51}$/

export const assertTableName = (table: string): string => {
  if (!TABLE_NAME.test(table)) {
    throw new Error(`invalid table name ${JSON.stringify(table)}: expected 1-51 characters of [A-Za-z0-9_]`)
  }
  return table
}

/** The index that serves the capture query `WHERE (created_at, order_id) > ($1, $2) ORDER BY created_at, order_id`. */
export const captureIndexName = (table: string): string => `${assertTableName(table)}_capture_idx`

/**
 * The statements, one per element, for drivers that run one statement per call.
 * `created_at` defaults to the inserting transaction's start time (now()) in UTC: the producer's
 * capture relies on that to know no transaction still in flight can commit an older row.
 */
export const ordersTableStatements = (table: string): ReadonlyArray<string> => {
  const name = assertTableName(table)
  return [
    `CREATE TABLE IF NOT EXISTS "${name}" (
  order_id        SERIAL PRIMARY KEY,
  customer_name   VARCHAR(255),
  restaurant_name VARCHAR(255),
  item            VARCHAR(255),
  amount          NUMERIC(10,2),
  order_status    VARCHAR(50),
  created_at      TIMESTAMP DEFAULT (now() AT TIME ZONE 'utc')
)`,
    `CREATE INDEX IF NOT EXISTS "${captureIndexName(name)}" ON "${name}" (created_at, order_id)`,
    // Logical capture needs every column of an update, also an unchanged one stored out of line (TOAST).
    `ALTER TABLE "${name}" REPLICA IDENTITY FULL`,
    notifyFunctionDdl,
    `CREATE OR REPLACE TRIGGER "${name}_notify" AFTER INSERT ON "${name}" FOR EACH STATEMENT EXECUTE FUNCTION food_orders_notify()`
  ]
}

/**
 * Wakes the producer when orders commit (NOTIFY is delivered at commit, when the rows become
 * visible): one notification per statement on channel `food_orders`, the table name as payload.
 * Without it the producer still captures everything, on its poll interval.
 */
export const notifyFunctionDdl = `CREATE OR REPLACE FUNCTION food_orders_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('food_orders', TG_TABLE_NAME);
  RETURN NULL;
END
$$`

/** The whole DDL as one idempotent script (run it without bind parameters: simple query protocol). */
export const ordersTableDdl = (table: string): string => ordersTableStatements(table).map((s) => `${s};\n`).join("")
