-- migrate:up
-- Expand: tasks get a priority (1 high, 2 normal, 3 low). The column is added nullable and without
-- a default, which only touches the catalog: no table rewrite, the lock is held for milliseconds.
-- The default applies to rows inserted from now on; existing rows stay NULL until the backfill
-- (20260211090000) fills them in batches, and 20260212090000 finally makes the column NOT NULL.
ALTER TABLE tasks ADD COLUMN priority smallint;
ALTER TABLE tasks ALTER COLUMN priority SET DEFAULT 2;

-- migrate:down
ALTER TABLE tasks DROP COLUMN priority;
