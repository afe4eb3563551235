-- Orders source table of the reference design, with an index for the capture query and sample rows.
-- Idempotent: safe to run on every start (docker-entrypoint-initdb.d runs it once; `npm run stack:up` each time).
-- Keep in sync with scripts/stack/sql.ts (ordersTableDdl), which emits the same DDL for per-test tables;
-- test/integration/harness.test.ts checks that both give the same columns.
-- The name starts with a digit: always double-quote it.

CREATE TABLE IF NOT EXISTS "2025em1100506_orders" (
  order_id        SERIAL PRIMARY KEY,
  customer_name   VARCHAR(255),
  restaurant_name VARCHAR(255),
  item            VARCHAR(255),
  amount          NUMERIC(10,2),
  order_status    VARCHAR(50),
  -- now() is the inserting transaction's start time; the producer's capture relies on that.
  created_at      TIMESTAMP DEFAULT (now() AT TIME ZONE 'utc')
);

-- Serves the capture query: WHERE (created_at, order_id) > (cursor) ORDER BY created_at, order_id.
CREATE INDEX IF NOT EXISTS "2025em1100506_orders_capture_idx" ON "2025em1100506_orders" (created_at, order_id);

-- Logical capture (capture.mode logical) needs updates to carry every column, also an unchanged one
-- stored out of line (TOAST): the old row under FULL holds it. The producer sets this itself when it
-- owns the table.
ALTER TABLE "2025em1100506_orders" REPLICA IDENTITY FULL;

-- Sample orders, loaded only into an empty table. Timestamps are UTC and straddle midnight, so the lake
-- gets two date partitions; orders 108 and 109 share a timestamp on purpose (the cursor is
-- (created_at, order_id), not created_at alone).
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM "2025em1100506_orders") THEN
    INSERT INTO "2025em1100506_orders"
      (order_id, customer_name, restaurant_name, item, amount, order_status, created_at)
    VALUES
      (101, 'John Doe',      'Burger Junction', 'Veg Burger',           220.00, 'PLACED',    '2025-01-15 12:24:00'),
      (102, 'Priya Sharma',  'Spice Route',     'Paneer Butter Masala', 340.50, 'PREPARING', '2025-01-15 12:31:10'),
      (103, 'Arjun Mehta',   'Pizza Palace',    'Margherita Pizza',     499.00, 'DELIVERED', '2025-01-15 13:05:42'),
      (104, 'Sara Khan',     'Sushi Corner',    'Salmon Nigiri Set',    725.00, 'DELIVERED', '2025-01-15 18:47:03'),
      (105, 'Rahul Verma',   'Burger Junction', 'Chicken Burger',       260.00, 'CANCELLED', '2025-01-15 19:12:55'),
      (106, 'Ananya Iyer',   'Dosa Darbar',     'Masala Dosa',          120.00, 'PLACED',    '2025-01-15 23:58:30'),
      (107, 'Michael Brown', 'Taco Town',       'Chicken Tacos',        315.75, 'PREPARING', '2025-01-16 00:02:11'),
      (108, 'Fatima Ali',    'Biryani House',   'Hyderabadi Biryani',   410.00, 'DELIVERED', '2025-01-16 12:15:00'),
      (109, 'Wei Chen',      'Noodle Bar',      'Hakka Noodles',        185.25, 'PLACED',    '2025-01-16 12:15:00'),
      (110, 'Emily Clark',   'Green Bowl',      'Quinoa Salad',         289.99, 'PLACED',    '2025-01-16 20:40:18');
    -- Explicit ids bypass the sequence: move it past them so the next insert gets 111.
    PERFORM setval(pg_get_serial_sequence('"2025em1100506_orders"', 'order_id'), 110);
  END IF;
END
$$;
