-- migrate:up
UPDATE orders SET status = 'shipped' WHERE id = 0;

-- migrate:down
UPDATE orders SET status = 'paid' WHERE status = 'shipped';
