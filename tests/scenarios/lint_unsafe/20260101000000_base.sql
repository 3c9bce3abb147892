-- migrate:up
CREATE TYPE order_status AS ENUM ('new', 'paid');
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email varchar(100),
    name text,
    age integer,
    legacy text
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id bigint,
    status order_status NOT NULL DEFAULT 'new',
    total numeric(10, 2)
);
CREATE MATERIALIZED VIEW order_totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE audit (id bigint);

-- migrate:down
DROP TABLE audit, events, orders, users CASCADE;
DROP TYPE order_status;
