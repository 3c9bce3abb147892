-- migrate:up
ALTER TABLE events_2025 SET UNLOGGED;

-- migrate:down
ALTER TABLE events_2025 SET LOGGED;
