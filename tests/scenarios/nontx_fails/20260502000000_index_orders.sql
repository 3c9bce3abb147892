-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer);
CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total);
ALTER TABLE orders ADD COLUMN note text DEFAULT no_such_function();
CREATE INDEX CONCURRENTLY orders_note_idx ON orders (note);
-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS orders_note_idx;
ALTER TABLE orders DROP COLUMN IF EXISTS note;
DROP INDEX CONCURRENTLY IF EXISTS orders_total_idx;
DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx;
