-- migrate:up
-- Forgot transaction:false: must be refused before anything runs.
CREATE INDEX CONCURRENTLY items_sku_idx ON items (sku);
-- migrate:down
DROP INDEX items_sku_idx;
