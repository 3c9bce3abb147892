-- migrate:up
ALTER TABLE users ADD COLUMN plan text NOT NULL;

-- migrate:down
ALTER TABLE users DROP COLUMN plan;
