-- migrate:up transaction:false
-- Built CONCURRENTLY so writes to tasks are never blocked; that needs transaction:false.
CREATE INDEX CONCURRENTLY IF NOT EXISTS tasks_project_id_idx ON tasks (project_id);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY IF EXISTS tasks_project_id_idx;
