-- migrate:up
CLUSTER orders USING orders_pkey;

-- migrate:down
