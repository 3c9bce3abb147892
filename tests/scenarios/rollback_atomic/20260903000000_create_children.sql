-- migrate:up
CREATE TABLE children (id bigint PRIMARY KEY, parent_id bigint NOT NULL REFERENCES parents);

-- migrate:down lock_timeout:3s
DROP TABLE children;
