-- migrate:up
-- A new enum value. Since PostgreSQL 12 this may run in a transaction, but the value cannot be
-- used until that transaction commits: keep it in a migration of its own, before any that uses it.
ALTER TYPE task_status ADD VALUE IF NOT EXISTS 'blocked' BEFORE 'done';

-- migrate:down
-- PostgreSQL cannot drop an enum value, so the down section rebuilds the type without it:
-- move blocked tasks back to 'doing', swap the column over to a new type, drop the old one.
UPDATE tasks SET status = 'doing' WHERE status = 'blocked';
ALTER TYPE task_status RENAME TO task_status_old;
CREATE TYPE task_status AS ENUM ('todo', 'doing', 'done');
ALTER TABLE tasks ALTER COLUMN status DROP DEFAULT;
ALTER TABLE tasks ALTER COLUMN status TYPE task_status USING status::text::task_status;
ALTER TABLE tasks ALTER COLUMN status SET DEFAULT 'todo';
DROP TYPE task_status_old;
