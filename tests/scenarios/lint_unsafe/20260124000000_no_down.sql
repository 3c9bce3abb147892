-- migrate:up
CREATE TABLE tags (id integer PRIMARY KEY, name text);
