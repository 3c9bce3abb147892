-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY invoices_account_id_idx ON billing.invoices (account_id);

-- migrate:down transaction:false
DROP INDEX CONCURRENTLY billing.invoices_account_id_idx;
