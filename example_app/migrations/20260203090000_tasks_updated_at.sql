-- migrate:up
-- Keep tasks.updated_at current with a trigger, so every writer (the app, psql, a backfill) sets it.
-- The function body is dollar-quoted: its semicolons belong to PL/pgSQL, not to the migration,
-- and flask-pgmig splits statements with PostgreSQL's own lexer, so it is read as one statement.
ALTER TABLE tasks ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_touch_updated_at
    BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- migrate:down
DROP TRIGGER tasks_touch_updated_at ON tasks;
DROP FUNCTION touch_updated_at();
ALTER TABLE tasks DROP COLUMN updated_at;
