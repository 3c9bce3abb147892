-- migrate:up
ALTER TABLE users DROP COLUMN legacy;

-- migrate:down
ALTER TABLE users ADD COLUMN legacy text;
