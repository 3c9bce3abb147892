-- migrate:up transaction:false
-- Contract: priority is now always set, make the database guarantee it. 'SET NOT NULL' alone scans
-- the whole table under an ACCESS EXCLUSIVE lock, blocking reads and writes for the duration.
-- Instead, each statement commits on its own (transaction:false):
--   1. a CHECK constraint added NOT VALID: a brief lock, no scan; new writes are checked at once;
--   2. VALIDATE scans the existing rows under SHARE UPDATE EXCLUSIVE, which lets reads and writes go on;
--   3. SET NOT NULL sees the validated constraint and skips its own scan (PostgreSQL 12+);
--   4. the CHECK constraint has done its job.
ALTER TABLE tasks ADD CONSTRAINT tasks_priority_not_null CHECK (priority IS NOT NULL) NOT VALID;
ALTER TABLE tasks VALIDATE CONSTRAINT tasks_priority_not_null;
ALTER TABLE tasks ALTER COLUMN priority SET NOT NULL;
ALTER TABLE tasks DROP CONSTRAINT tasks_priority_not_null;

-- migrate:down
ALTER TABLE tasks ALTER COLUMN priority DROP NOT NULL;
