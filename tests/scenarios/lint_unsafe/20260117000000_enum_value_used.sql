-- migrate:up
ALTER TYPE order_status ADD VALUE 'shipped';
UPDATE orders SET status = 'shipped' WHERE id = 0;

-- migrate:down
