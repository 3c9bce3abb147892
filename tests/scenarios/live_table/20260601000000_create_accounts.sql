-- migrate:up
CREATE TABLE accounts (id bigint PRIMARY KEY, balance numeric NOT NULL DEFAULT 0);
INSERT INTO accounts SELECT g, g FROM generate_series(1, 100) g;
-- migrate:down
DROP TABLE accounts;
