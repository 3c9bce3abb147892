-- migrate:up
ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_total_check;

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_total_check;
