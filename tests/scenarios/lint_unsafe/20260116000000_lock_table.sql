-- migrate:up
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;
UPDATE orders SET total = 0 WHERE total IS NULL;

-- migrate:down
