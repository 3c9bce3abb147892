-- migrate:up
CREATE TABLE invoices (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    number text
);
CREATE INDEX invoices_order_id_idx ON invoices (order_id);
ALTER TABLE invoices ADD COLUMN issued_at timestamptz NOT NULL;
ALTER TABLE invoices ADD CONSTRAINT invoices_number_key UNIQUE (number);
ALTER TABLE invoices ADD CONSTRAINT invoices_number_check CHECK (number <> '');
ALTER TABLE invoices ALTER COLUMN number SET NOT NULL;
ALTER TABLE invoices ALTER COLUMN number TYPE varchar(40);
ALTER TABLE invoices RENAME COLUMN number TO invoice_number;
CREATE TABLE invoice_lines AS SELECT 1 AS line;
DROP TABLE invoice_lines;

-- migrate:down
DROP TABLE invoices;
