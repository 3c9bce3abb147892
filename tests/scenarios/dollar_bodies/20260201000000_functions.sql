-- migrate:up
CREATE TABLE audit_events (id serial PRIMARY KEY, note text);

CREATE FUNCTION log_note(msg text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    new_id integer;
BEGIN
    INSERT INTO audit_events (note) VALUES (msg); -- a ; inside the body
    INSERT INTO audit_events (note) VALUES ('second; statement');
    SELECT max(id) INTO new_id FROM audit_events;
    RETURN new_id;
END;
$$;

CREATE FUNCTION tagged() RETURNS text LANGUAGE sql AS $body$
SELECT 'a;b;c'
-- migrate:down
$body$;

INSERT INTO audit_events (note) VALUES ('
-- migrate:down
looks like a marker but is inside a string');
INSERT INTO audit_events (note) VALUES (E'escaped \' quote; still one statement')
-- migrate:down
DROP FUNCTION tagged();
DROP FUNCTION log_note(text);
DROP TABLE audit_events;
