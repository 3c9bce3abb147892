-- migrate:up
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_user_fk;
ALTER TABLE users DROP CONSTRAINT users_age_check;
