"""Tests for flask_pgmig.core.snapshot: every object kind shows up in the diff, equal schemas compare equal.

The per-kind cases share one database and each runs inside a transaction that is rolled back (creating and
dropping a database per case would cost seconds each on a busy machine).
"""

from __future__ import annotations

from collections.abc import Iterator

import pgtest
import psycopg
import pytest

from flask_pgmig.core.snapshot import Snapshot, diff, snapshot

T = "CREATE TABLE t (id int PRIMARY KEY, c int);"
FUNC = "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'SELECT x';"

# (setup, change, one line the diff must hold)
CASES: dict[str, tuple[str, str, str]] = {
    "schema": ("", "CREATE SCHEMA billing;", "schema billing was added"),
    "table": ("", "CREATE TABLE t (id int);", "table t was added"),
    "table in a schema": ("CREATE SCHEMA s;", "CREATE TABLE s.t (id int);", "table s.t was added"),
    "column": (T, "ALTER TABLE t ADD COLUMN email text;", "column t.email was added"),
    "column dropped": (T, "ALTER TABLE t DROP COLUMN c;", "column t.c was removed"),
    "column type": (T, "ALTER TABLE t ALTER c TYPE bigint;", "type of column t.c changed from integer to bigint"),
    "column default": (T, "ALTER TABLE t ALTER c SET DEFAULT 7;", "default of column t.c changed from none to 7"),
    "column nullability": (T, "ALTER TABLE t ALTER c SET NOT NULL;",
                           "not null of column t.c changed from False to True"),
    "column identity": ("CREATE TABLE t (c int NOT NULL);", "ALTER TABLE t ALTER c ADD GENERATED ALWAYS AS IDENTITY;",
                        "identity of column t.c changed from none to a"),
    "generated column": ("CREATE TABLE t (a int, g int GENERATED ALWAYS AS (a * 2) STORED);",
                         "ALTER TABLE t ALTER g DROP EXPRESSION;", "generated of column t.g changed from s to none"),
    "constraint": (T, "ALTER TABLE t ADD CONSTRAINT c_pos CHECK (c > 0) NOT VALID;", "constraint t.c_pos was added"),
    "constraint validity": (T + "ALTER TABLE t ADD CONSTRAINT c_pos CHECK (c > 0) NOT VALID;",
                            "ALTER TABLE t VALIDATE CONSTRAINT c_pos;",
                            "validated of constraint t.c_pos changed from False to True"),
    "index": (T, "CREATE INDEX t_c ON t (c);", "index t_c was added"),
    "index definition": (T + "CREATE INDEX t_c ON t (c);", "DROP INDEX t_c; CREATE INDEX t_c ON t (c DESC);",
                         "definition of index t_c changed from CREATE INDEX t_c ON public.t USING btree (c) to "
                         "CREATE INDEX t_c ON public.t USING btree (c DESC)"),
    "sequence": ("", "CREATE SEQUENCE s;", "sequence s was added"),
    "sequence options": ("CREATE SEQUENCE s;", "ALTER SEQUENCE s INCREMENT BY 5;",
                         "increment of sequence s changed from 1 to 5"),
    "view": (T, "CREATE VIEW v AS SELECT id FROM t;", "view v was added"),
    "view definition": (T + "CREATE VIEW v AS SELECT id FROM t;", "CREATE OR REPLACE VIEW v AS SELECT id, c FROM t;",
                        "column v.c was added"),
    "materialized view": (T, "CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;", "materialized view mv was added"),
    "function": ("", FUNC, "function f(x integer) was added"),
    "function body": (FUNC, "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql AS 'SELECT x + 1';",
                      "definition of function f(x integer) changed from CREATE OR REPLACE FUNCTION public.f(x "
                      "integer) RETURNS integer LANGUAGE sql AS $function$SELECT x$function$ to CREATE OR REPLACE "
                      "FUNCTION public.f(x integer) RETURNS integer LANGUAGE sql AS $function$SELECT x + 1$function$"),
    "procedure": ("", "CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1';", "procedure p() was added"),
    "trigger": (T, "CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION "
                "suppress_redundant_updates_trigger();", "trigger t.tr was added"),
    "trigger enabled": (T + "CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION "
                        "suppress_redundant_updates_trigger();", "ALTER TABLE t DISABLE TRIGGER tr;",
                        "enabled of trigger t.tr changed from O to D"),
    "enum type": ("", "CREATE TYPE mood AS ENUM ('ok');", "enum type mood was added"),
    "enum label": ("CREATE TYPE mood AS ENUM ('ok');", "ALTER TYPE mood ADD VALUE 'sad';",
                   "enum label mood.'sad' was added"),
    "domain": ("CREATE DOMAIN pos AS int;", "ALTER DOMAIN pos SET DEFAULT 1;",
               "default of domain pos changed from none to 1"),
    "range type": ("", "CREATE TYPE floatrange AS RANGE (subtype = float8);", "range type floatrange was added"),
    "composite type": ("", "CREATE TYPE pair AS (a int, b text);", "composite type pair was added"),
    "policy": (T, "CREATE POLICY p ON t USING (c > 0);", "policy t.p was added"),
    "row level security": (T, "ALTER TABLE t ENABLE ROW LEVEL SECURITY;",
                           "row security of table t changed from False to True"),
    "rule": (T, "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING;", "rule t.r was added"),
    "comment": (T, "COMMENT ON COLUMN t.c IS 'hello';", "comment column c of table t was added"),
    "comment text": (T + "COMMENT ON TABLE t IS 'hello';", "COMMENT ON TABLE t IS 'bye';",
                     "text of comment table t changed from hello to bye"),
    "extension": ("DROP EXTENSION plpgsql;", "CREATE EXTENSION plpgsql;", "extension plpgsql was added"),
}  # fmt: skip


@pytest.fixture(scope="module")
def shared_url(pg_server_url: str) -> Iterator[str]:
    factory = pgtest.DatabaseFactory(pg_server_url)
    yield factory()
    factory.drop_all()


def diff_of(url: str, setup: str, change: str) -> list[str]:
    """The diff that ``change`` makes after ``setup``, all rolled back afterwards."""
    with psycopg.connect(url) as conn:
        try:
            if setup:
                conn.execute(setup)
            before = snapshot(conn)
            conn.execute(change)
            return diff(before, snapshot(conn))
        finally:
            conn.rollback()


@pytest.mark.parametrize("kind", sorted(CASES))
def test_each_object_kind_appears_in_the_diff(shared_url: str, kind: str) -> None:
    setup, change, expected = CASES[kind]
    lines = diff_of(shared_url, setup, change)
    assert expected in lines, lines


def test_grants_on_tables_columns_and_default_privileges(shared_url: str) -> None:
    lines = diff_of(shared_url, T, "GRANT SELECT ON t TO PUBLIC; GRANT UPDATE (c) ON t TO PUBLIC; "
                    "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC;")  # fmt: skip
    assert any(line.startswith("grants of table t changed from [") and " to [=r/" in line for line in lines)
    assert any(line.startswith("grants of column t.c changed from none to [=w/") for line in lines)
    assert any(
        line.startswith("default privileges ") and line.endswith(" on tables was added") for line in lines
    )


def test_grant_then_revoke_is_no_difference(shared_url: str) -> None:
    change = (
        "GRANT SELECT ON t TO PUBLIC; REVOKE SELECT ON t FROM PUBLIC; GRANT USAGE ON SCHEMA public TO PUBLIC;"
    )
    assert diff_of(shared_url, T, change) == []


def test_extension_members_are_not_listed_one_by_one(shared_url: str) -> None:
    with psycopg.connect(shared_url, autocommit=True) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions").fetchall()}
    extension = next((n for n in ("pgcrypto", "citext", "hstore") if n in names), None)
    if extension is None:
        pytest.fail(
            "This server has none of pgcrypto, citext or hstore (contrib) to test extension members with."
        )
    assert diff_of(shared_url, "", f"CREATE EXTENSION {extension};") == [f"extension {extension} was added"]


def test_invalid_index_is_told_apart(shared_url: str) -> None:
    with psycopg.connect(shared_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE inv (c int); INSERT INTO inv VALUES (1), (1);")
        try:
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("CREATE UNIQUE INDEX CONCURRENTLY inv_c ON inv (c)")
            assert snapshot(conn).objects[("index", "inv_c")]["valid"] is False
            before = snapshot(conn)
            conn.execute("DROP INDEX inv_c; CREATE UNIQUE INDEX inv_c ON inv (c) WHERE c > 1")
            assert "valid of index inv_c changed from False to True" in diff(before, snapshot(conn))
        finally:
            conn.execute("DROP TABLE inv")


def test_same_schema_built_in_another_order_is_equal(shared_url: str) -> None:
    ddl_one = "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (x text); CREATE INDEX b_x ON b (x);"
    ddl_two = "CREATE TABLE b (x text); CREATE INDEX b_x ON b (x); CREATE TABLE a (id int PRIMARY KEY);"
    snaps: list[Snapshot] = []
    for ddl in (ddl_one, ddl_two):
        with psycopg.connect(shared_url) as conn:
            conn.execute(ddl)
            snaps.append(snapshot(conn))
            conn.rollback()
    assert snaps[0] == snaps[1] and diff(snaps[0], snaps[1]) == []
    assert snaps[0].names("table") == ["a", "b"]


def test_history_table_and_audit_log_are_left_out(shared_url: str) -> None:
    with psycopg.connect(shared_url) as conn:
        before = snapshot(conn)
        conn.execute(
            "CREATE TABLE pgmig_history (version text PRIMARY KEY); CREATE TABLE pgmig_history_audit "
            "(id bigserial PRIMARY KEY); COMMENT ON TABLE pgmig_history IS 'x'; "
            "CREATE TABLE pgmig_history_backfill (version text PRIMARY KEY)"
        )
        assert diff(before, snapshot(conn)) == []
        mine = snapshot(conn, exclude=[("public", "other")])
        conn.rollback()
    assert ("table", "pgmig_history") in mine.objects and (
        "sequence",
        "pgmig_history_audit_id_seq",
    ) in mine.objects
