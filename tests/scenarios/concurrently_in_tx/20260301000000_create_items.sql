-- migrate:up
CREATE TABLE items (id int PRIMARY KEY, sku text);
-- migrate:down
DROP TABLE items;
