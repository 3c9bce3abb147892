-- migrate:up
ALTER TABLE billing.accounts ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE FUNCTION billing.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON billing.accounts
    FOR EACH ROW EXECUTE FUNCTION billing.touch();

-- migrate:down
DROP TRIGGER accounts_touch ON billing.accounts;
DROP FUNCTION billing.touch();
ALTER TABLE billing.accounts DROP COLUMN updated_at;
