-- Wakes the producer as soon as orders commit, instead of at its next poll (NOTIFY is delivered at
-- commit, exactly when the rows become visible). One notification per INSERT statement on channel
-- `food_orders`, with the table name as payload. Optional: without it the producer polls every
-- batch_interval. Keep in sync with scripts/stack/sql.ts (notifyFunctionDdl). Idempotent.
CREATE OR REPLACE FUNCTION food_orders_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('food_orders', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER "2025em1100506_orders_notify"
  AFTER INSERT ON "2025em1100506_orders"
  FOR EACH STATEMENT EXECUTE FUNCTION food_orders_notify();
