-- migrate:up
DROP TABLE audit_log;

-- migrate:down
CREATE TABLE audit_log (id bigint);
