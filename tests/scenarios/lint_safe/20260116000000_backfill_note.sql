-- migrate:up transaction:false
UPDATE orders SET note = 'none' WHERE note IS NULL;

-- migrate:down
