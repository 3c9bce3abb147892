-- migrate:up
REINDEX TABLE orders;

-- migrate:down
