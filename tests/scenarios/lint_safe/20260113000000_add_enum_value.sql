-- migrate:up
ALTER TYPE order_status ADD VALUE 'shipped';

-- migrate:down
