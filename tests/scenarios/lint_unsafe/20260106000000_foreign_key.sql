-- migrate:up
ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_user_fk;
