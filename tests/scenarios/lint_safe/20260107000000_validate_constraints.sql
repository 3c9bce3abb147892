-- migrate:up
ALTER TABLE orders VALIDATE CONSTRAINT orders_user_fk;
ALTER TABLE users VALIDATE CONSTRAINT users_age_check;

-- migrate:down
