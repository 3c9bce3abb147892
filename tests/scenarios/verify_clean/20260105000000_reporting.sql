-- migrate:up
CREATE VIEW billing.account_totals AS
    SELECT a.id, a.email, coalesce(sum(i.total), 0) AS total
    FROM billing.accounts a LEFT JOIN billing.invoices i ON i.account_id = a.id
    GROUP BY a.id, a.email;
CREATE MATERIALIZED VIEW billing.plan_counts AS SELECT plan, count(*) AS n FROM billing.accounts GROUP BY plan;
CREATE PROCEDURE billing.refresh_counts() LANGUAGE sql AS 'REFRESH MATERIALIZED VIEW billing.plan_counts';

-- migrate:down
DROP PROCEDURE billing.refresh_counts();
DROP MATERIALIZED VIEW billing.plan_counts;
DROP VIEW billing.account_totals;
