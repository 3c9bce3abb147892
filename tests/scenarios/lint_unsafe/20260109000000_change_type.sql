-- migrate:up
ALTER TABLE users ALTER COLUMN age TYPE bigint;

-- migrate:down
ALTER TABLE users ALTER COLUMN age TYPE integer;
