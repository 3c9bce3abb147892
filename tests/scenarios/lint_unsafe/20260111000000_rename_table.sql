-- migrate:up
ALTER TABLE audit RENAME TO audit_log;

-- migrate:down
ALTER TABLE audit_log RENAME TO audit;
