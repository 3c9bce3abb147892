-- migrate:up
CREATE SCHEMA billing;
CREATE TYPE billing.plan AS ENUM ('free', 'pro');
CREATE DOMAIN billing.cents AS bigint CHECK (VALUE >= 0);
CREATE TABLE billing.accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    plan billing.plan NOT NULL DEFAULT 'free',
    balance billing.cents NOT NULL DEFAULT 0,
    email_lower text GENERATED ALWAYS AS (lower(email)) STORED
);
COMMENT ON TABLE billing.accounts IS 'one row per paying customer';

-- migrate:down
DROP TABLE billing.accounts;
DROP DOMAIN billing.cents;
DROP TYPE billing.plan;
DROP SCHEMA billing;
