-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY IF NOT EXISTS items_label_idx ON items (label);
-- pgmig:backfill batch_size:400 statement_timeout:30s
UPDATE items SET price = id * 2, touched = touched + 1 WHERE price IS NULL AND label NOT LIKE 'ten%';
-- migrate:down transaction:false
-- pgmig:backfill batch_size:1000
UPDATE items SET price = NULL, touched = touched - 1 WHERE price IS NOT NULL;
DROP INDEX CONCURRENTLY IF EXISTS items_label_idx;
