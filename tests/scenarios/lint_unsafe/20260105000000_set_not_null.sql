-- migrate:up
ALTER TABLE users ALTER COLUMN name SET NOT NULL;

-- migrate:down
ALTER TABLE users ALTER COLUMN name DROP NOT NULL;
