-- migrate:up
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_status_idx ON users (status);

-- migrate:down
DROP INDEX users_email_key;
