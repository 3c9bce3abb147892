-- migrate:up
ALTER TABLE users ADD COLUMN plan text;
ALTER TABLE users ALTER COLUMN email SET DEFAULT '';

-- migrate:down
ALTER TABLE users DROP COLUMN plan;
