-- migrate:up transaction:false
CREATE INDEX CONCURRENTLY accounts_balance_idx ON accounts (balance);
-- migrate:down transaction:false
DROP INDEX CONCURRENTLY accounts_balance_idx;
