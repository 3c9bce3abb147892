-- migrate:up
CREATE SEQUENCE billing.invoice_number START 1000;
CREATE TABLE billing.invoices (
    id serial PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES billing.accounts (id),
    number bigint NOT NULL DEFAULT nextval('billing.invoice_number'),
    total billing.cents NOT NULL
);
ALTER SEQUENCE billing.invoice_number OWNED BY billing.invoices.number;

-- migrate:down
DROP TABLE billing.invoices;
