-- migrate:up
ALTER TABLE accounts ADD COLUMN flagged boolean;
-- migrate:down
ALTER TABLE accounts DROP COLUMN flagged;
