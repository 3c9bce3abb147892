-- migrate:up
ALTER TABLE billing.invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoices_positive ON billing.invoices USING (total >= 0);
GRANT SELECT ON billing.account_totals TO PUBLIC;
GRANT USAGE ON SCHEMA billing TO PUBLIC;
COMMENT ON COLUMN billing.invoices.total IS 'in cents';

-- migrate:down
COMMENT ON COLUMN billing.invoices.total IS NULL;
REVOKE USAGE ON SCHEMA billing FROM PUBLIC;
REVOKE SELECT ON billing.account_totals FROM PUBLIC;
DROP POLICY invoices_positive ON billing.invoices;
ALTER TABLE billing.invoices DISABLE ROW LEVEL SECURITY;
