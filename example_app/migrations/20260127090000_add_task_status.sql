-- migrate:up
-- Tasks get a workflow state instead of a done flag. The new column has a constant default, so
-- adding it does not rewrite the table; the UPDATE then backfills it from the old flag.
-- This runs in one transaction, which is right for a table of this size: on a large, busy table
-- backfill in batches from a Python migration instead (see the data migrations guide).
CREATE TYPE task_status AS ENUM ('todo', 'doing', 'done');
ALTER TABLE tasks ADD COLUMN status task_status NOT NULL DEFAULT 'todo';
UPDATE tasks SET status = 'done' WHERE done;

-- migrate:down
ALTER TABLE tasks DROP COLUMN status;
DROP TYPE task_status;
