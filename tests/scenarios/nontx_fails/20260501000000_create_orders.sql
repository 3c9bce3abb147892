-- migrate:up
CREATE TABLE orders (id bigint PRIMARY KEY, customer text, total numeric);
INSERT INTO orders SELECT g, 'c' || (g % 7), g FROM generate_series(1, 50) g;
-- migrate:down
DROP TABLE orders;
