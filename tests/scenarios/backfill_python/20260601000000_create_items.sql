-- migrate:up
CREATE TABLE items (id bigint PRIMARY KEY, touched int NOT NULL DEFAULT 0, label text, price int);
INSERT INTO items (id, label) SELECT g, CASE WHEN g % 10 = 0 THEN 'ten%' ELSE 'x' || g END FROM generate_series(1, 5000) g;
-- migrate:down
DROP TABLE items;
