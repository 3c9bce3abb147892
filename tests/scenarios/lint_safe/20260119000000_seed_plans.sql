-- migrate:up
CREATE TABLE plans (name text PRIMARY KEY);
INSERT INTO plans VALUES ('free'), ('pro');

-- migrate:down
-- pgmig:allow missing-down because plans are kept for the billing history
