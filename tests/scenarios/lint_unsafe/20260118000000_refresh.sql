-- migrate:up
REFRESH MATERIALIZED VIEW order_totals;

-- migrate:down
