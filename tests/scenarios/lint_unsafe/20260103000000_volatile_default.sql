-- migrate:up
ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();

-- migrate:down
ALTER TABLE users DROP COLUMN token;
