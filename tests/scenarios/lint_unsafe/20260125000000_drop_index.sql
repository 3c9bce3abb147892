-- migrate:up
DROP INDEX users_email_idx;

-- migrate:down
CREATE INDEX users_email_idx ON users (email);
