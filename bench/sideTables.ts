/**
 * The two tables the `tables` scenario captures beside the orders table, and the SQL that fills and
 * changes them (shared by the scenario, which bulk-loads them, and tablesGenerator.ts, which writes
 * to them at a rate):
 *
 *   restaurants  11 columns of mixed types (bigint key, text, varchar, smallint, numeric, boolean,
 *                timestamptz, jsonb, text[]), one row per restaurant_id
 *   order_items  a composite key (order_id, line): row g is order (g-1)/3+1, line (g-1)%3+1
 *
 * Rows are numbered g = 1, 2, ...; the same g always gives the same key, so a writer that knows the
 * highest g can insert the next ones and update earlier ones by number.
 */
import { assertTableName } from "../scripts/stack/sql.ts"

export type SideTable = "restaurants" | "order_items"
export const sideTables: ReadonlyArray<SideTable> = ["restaurants", "order_items"]

/** The orders table `<roll>_orders` gives `<roll>_restaurants`: the lake calls it `restaurants` (capturedTables.ts strips the roll). */
export const sideTableName = (ordersTable: string, table: SideTable) => `${ordersTable.replace(/orders$/, "")}${table}`

export const createSideTableSql = (name: string, table: SideTable): string => {
  const t = assertTableName(name)
  return table === "restaurants"
    ? `CREATE TABLE "${t}" (
        restaurant_id bigint PRIMARY KEY, name text NOT NULL, city varchar(40), seats smallint, rating numeric(3,2),
        delivery_fee numeric(6,2), open boolean, opened_at timestamptz, menu jsonb, tags text[], updated_at timestamptz)`
    : `CREATE TABLE "${t}" (
        order_id bigint, line integer, item text NOT NULL, price numeric(10,2), qty integer, added_at timestamptz,
        PRIMARY KEY (order_id, line))`
}

/** Rows g = $1 .. $2 (bigint), generated server-side. */
export const insertSideRowsSql = (name: string, table: SideTable): string => {
  const t = assertTableName(name)
  return table === "restaurants"
    ? `INSERT INTO "${t}" (restaurant_id, name, city, seats, rating, delivery_fee, open, opened_at, menu, tags, updated_at)
       SELECT g, 'Restaurant ' || g, 'City ' || (g % 50), (20 + g % 80)::smallint, round((1 + random() * 4)::numeric, 2),
              round((random() * 10)::numeric, 2), g % 7 <> 0, now() - (g % 1000) * interval '1 hour',
              jsonb_build_object('dishes', g % 40, 'cuisine', (ARRAY['thai', 'italian', 'indian', 'mexican'])[1 + (g % 4)::int],
                                 'hours', jsonb_build_array(9, 22)),
              ARRAY['tag' || (g % 10), 'zone' || (g % 5)], now()
       FROM generate_series($1::bigint, $2::bigint) g`
    : `INSERT INTO "${t}" (order_id, line, item, price, qty, added_at)
       SELECT (g - 1) / 3 + 1, ((g - 1) % 3 + 1)::int, 'item ' || (g % 200), round((1 + random() * 30)::numeric, 2),
              (1 + g % 4)::int, now()
       FROM generate_series($1::bigint, $2::bigint) g`
}

/** Updates rows by number: `$1` a bigint[] of g. */
export const updateSideRowsSql = (name: string, table: SideTable): string => {
  const t = assertTableName(name)
  return table === "restaurants"
    ? `UPDATE "${t}" SET rating = round((1 + random() * 4)::numeric, 2), updated_at = now(), tags = ARRAY['tag' || (restaurant_id % 10), 'updated']
       WHERE restaurant_id = ANY($1::bigint[])`
    : `UPDATE "${t}" SET qty = qty + 1 WHERE (order_id, line) IN (SELECT (k - 1) / 3 + 1, ((k - 1) % 3 + 1)::int FROM unnest($1::bigint[]) k)`
}

/** The highest row number g in the table (0 when empty). */
export const maxSideRowSql = (name: string, table: SideTable): string => {
  const t = assertTableName(name)
  return table === "restaurants"
    ? `SELECT coalesce(max(restaurant_id), 0)::bigint::text AS g FROM "${t}"`
    : `SELECT coalesce(max((order_id - 1) * 3 + line), 0)::bigint::text AS g FROM "${t}"`
}
