-- migrate:up
CREATE TABLE parents (id bigint PRIMARY KEY, label text NOT NULL);

-- migrate:down
DROP TABLE parents;
