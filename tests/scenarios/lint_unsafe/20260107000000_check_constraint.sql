-- migrate:up
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);

-- migrate:down
ALTER TABLE users DROP CONSTRAINT users_age_check;
