-- migrate:up
ALTER TABLE orders ADD COLUMN note text;
UPDATE orders SET note = 'none';

-- migrate:down
ALTER TABLE orders DROP COLUMN note;
