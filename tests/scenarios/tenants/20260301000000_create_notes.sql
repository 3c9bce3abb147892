-- migrate:up
-- Runs once per tenant schema: unqualified names land in the tenant's schema (search_path).
CREATE TABLE notes (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body text NOT NULL
);

-- migrate:down
DROP TABLE notes;
