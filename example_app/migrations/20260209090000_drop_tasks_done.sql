-- migrate:up
-- The contract step of replacing tasks.done with tasks.status (20260127090000 added and backfilled
-- status). It ships one release after the code stopped reading 'done': a running instance of the
-- old code would fail on a column that is gone. Dropping a column only takes a brief ACCESS
-- EXCLUSIVE lock (no rewrite); lock_timeout keeps it from queueing traffic behind it.
ALTER TABLE tasks DROP COLUMN done;

-- migrate:down
ALTER TABLE tasks ADD COLUMN done boolean NOT NULL DEFAULT false;
UPDATE tasks SET done = true WHERE status = 'done';
