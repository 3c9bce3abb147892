-- migrate:up
ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false;

-- migrate:down
ALTER TABLE notes DROP COLUMN pinned;
