-- migrate:up
CREATE INDEX children_parent_id ON children (parent_id);

-- migrate:down statement_timeout:10s
DROP INDEX children_parent_id;
