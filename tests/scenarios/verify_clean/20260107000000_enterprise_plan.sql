-- migrate:up
ALTER TYPE billing.plan ADD VALUE 'enterprise';

-- migrate:down
-- PostgreSQL cannot drop an enum label: rebuild the type without it.
ALTER TABLE billing.accounts ALTER COLUMN plan DROP DEFAULT;
DROP MATERIALIZED VIEW billing.plan_counts;
ALTER TYPE billing.plan RENAME TO plan_old;
CREATE TYPE billing.plan AS ENUM ('free', 'pro');
ALTER TABLE billing.accounts ALTER COLUMN plan TYPE billing.plan USING plan::text::billing.plan;
ALTER TABLE billing.accounts ALTER COLUMN plan SET DEFAULT 'free';
DROP TYPE billing.plan_old;
CREATE MATERIALIZED VIEW billing.plan_counts AS SELECT plan, count(*) AS n FROM billing.accounts GROUP BY plan;
