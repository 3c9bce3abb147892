"""BEGIN travels with a migration's first statement and its history write with the COMMIT: errors must still
name the right line and column, a refused history write must still roll the migration back, and a COMMIT
that fails must not be blamed on the history table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from helpers import history_versions, query, tables

from flask_pgmig.core import backfill
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.errors import HistoryError, MigrationFailed, PgMigError


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


FIRST = "-- migrate:up\nCREATE TABLE first_t (id int);\n-- migrate:down\nDROP TABLE first_t;\n"


@pytest.mark.parametrize("atomic", [False, True])
@pytest.mark.parametrize(
    ("body", "line", "column", "sqlstate"),
    [
        ("CREATE TABLE second_t (id int, label nosuchtype);", 3, 38, "42704"),  # first statement, analysis error
        ("CREATE TABLE second_t (id int,, label text);", 3, 31, "42601"),  # first statement, syntax error
        ("CREATE TABLE second_t (id int);\nSELECT nosuchcolumn FROM second_t;", 4, 8, "42703"),  # second one
    ],
)
def test_an_error_in_a_statement_names_its_line_and_column(
    database_url: str, tmp_path: Path, atomic: bool, body: str, line: int, column: int, sqlstate: str
) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": FIRST,
        "20260802000000_second.sql": f"-- migrate:up lock_timeout:2s\n\n{body}\n"
        "-- migrate:down\nDROP TABLE second_t;\n",
    })  # fmt: skip
    with pytest.raises(MigrationFailed) as caught:
        Migrator.create(database_url, migrations).migrate(atomic=atomic)
    error = caught.value
    assert (error.version, error.line, error.column, error.sqlstate) == ("20260802000000", line, column, sqlstate)
    assert f"line {line}, column {column} of '20260802000000_second.sql'" in str(error)
    assert history_versions(database_url) == ([] if atomic else ["20260801000000"])
    assert "second_t" not in tables(database_url)
    assert ("first_t" in tables(database_url)) is not atomic
    with psycopg.connect(database_url) as conn:  # nothing left open: the next run works
        assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
                            " AND datname = current_database()").fetchone() == (0,)  # fmt: skip


@pytest.mark.parametrize("atomic", [False, True])
def test_a_history_row_suppressed_by_a_trigger_rolls_the_migration_back(
    database_url: str, tmp_path: Path, atomic: bool
) -> None:
    migrations = write(tmp_path / "m", {"20260801000000_first.sql": FIRST})
    migrator = Migrator.create(database_url, migrations)
    migrator.status()
    with psycopg.connect(database_url, autocommit=True) as conn:
        migrator.history.ensure(conn)
        conn.execute("CREATE FUNCTION swallow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER swallow BEFORE INSERT ON pgmig_history FOR EACH ROW EXECUTE FUNCTION swallow()")
    with pytest.raises(HistoryError) as caught:
        migrator.migrate(atomic=atomic)
    assert "changed 0 rows instead of 1" in str(caught.value) and "20260801000000" in str(caught.value)
    assert "first_t" not in tables(database_url)  # the DDL went with the row that was never written
    query(database_url, "DROP TRIGGER swallow ON pgmig_history")
    migrator.migrate(atomic=atomic)
    assert history_versions(database_url) == ["20260801000000"] and "first_t" in tables(database_url)


@pytest.mark.parametrize("atomic", [False, True])
def test_a_deferred_constraint_failing_at_commit_is_not_blamed_on_the_history(
    database_url: str, tmp_path: Path, atomic: bool
) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": "-- migrate:up\nCREATE TABLE parent (id int PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id int REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO child VALUES (42);\n-- migrate:down\nDROP TABLE child, parent;\n",
    })  # fmt: skip
    with pytest.raises(PgMigError) as caught:
        Migrator.create(database_url, migrations).migrate(atomic=atomic)
    assert not isinstance(caught.value, HistoryError)
    assert "23503" in str(caught.value)
    assert history_versions(database_url) == [] and not {"parent", "child"} & tables(database_url)


def test_the_history_records_how_long_each_migration_ran_on_the_server(database_url: str, tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": "-- migrate:up\nSELECT pg_sleep(0.3);\n-- migrate:down\nSELECT 1;\n",
        "20260802000000_second.sql": "-- migrate:up\nSELECT pg_sleep(0.2);\n-- migrate:down\nSELECT 1;\n",
    })  # fmt: skip
    Migrator.create(database_url, migrations).migrate()
    durations = dict(query(database_url, "SELECT version, duration_ms FROM pgmig_history"))
    assert 300 <= durations["20260801000000"] < 30_000 and 200 <= durations["20260802000000"] < 30_000


def test_atomic_durations_are_per_migration(database_url: str, tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": "-- migrate:up\nSELECT pg_sleep(0.3);\n-- migrate:down\nSELECT 1;\n",
        "20260802000000_second.sql": "-- migrate:up\n-- nothing\n-- migrate:down\nSELECT 1;\n",
        "20260803000000_third.sql": "-- migrate:up statement_timeout:5s\nSELECT pg_sleep(0.2);\n-- migrate:down\n",
    })  # fmt: skip
    result = Migrator.create(database_url, migrations).migrate(atomic=True)
    assert [step.version for step in result.steps] == ["20260801000000", "20260802000000", "20260803000000"]
    durations = dict(query(database_url, "SELECT version, duration_ms FROM pgmig_history"))
    assert durations["20260801000000"] >= 300 and durations["20260803000000"] >= 200
    assert durations["20260802000000"] < 200
    rows = query(database_url, "SELECT version, status, down_sql IS NULL, kind FROM pgmig_history ORDER BY 1")
    assert rows == [("20260801000000", "applied", False, "sql"), ("20260802000000", "applied", False, "sql"),
                    ("20260803000000", "applied", True, "sql")]  # fmt: skip


def test_rolling_back_a_sql_migration_forgets_its_backfill_progress_with_its_row(
    database_url: str, tmp_path: Path
) -> None:
    migrations = write(tmp_path / "m", {
        "20260801000000_first.sql": FIRST,
        "20260802000000_second.sql": "-- migrate:up\nCREATE TABLE second_t (id int);\n"
        "-- migrate:down\nDROP TABLE second_t;\n",
    })  # fmt: skip
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate()
    with psycopg.connect(database_url, autocommit=True) as conn:
        backfill.ensure_progress_table(conn, migrator.history)
        for version in ("20260801000000", "20260802000000"):
            conn.execute("INSERT INTO pgmig_history_backfill (version, name, table_name, key_column) "
                         "VALUES (%s, 'fill', 't', 'id')", [version])  # fmt: skip
    migrator.rollback()
    assert history_versions(database_url) == ["20260801000000"] and "second_t" not in tables(database_url)
    assert query(database_url, "SELECT version FROM pgmig_history_backfill") == [("20260801000000",)]
    migrator.rollback()
    assert history_versions(database_url) == [] and query(database_url, "SELECT * FROM pgmig_history_backfill") == []


def test_a_history_delete_swallowed_by_a_trigger_keeps_the_migration(database_url: str, tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", {"20260801000000_first.sql": FIRST})
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$")
        conn.execute("CREATE TRIGGER keep BEFORE DELETE ON pgmig_history FOR EACH ROW EXECUTE FUNCTION keep()")
    with pytest.raises(HistoryError) as caught:
        migrator.rollback()
    assert "changed 0 rows instead of 1" in str(caught.value)
    assert history_versions(database_url) == ["20260801000000"] and "first_t" in tables(database_url)
    query(database_url, "DROP TRIGGER keep ON pgmig_history")
    migrator.rollback()
    assert history_versions(database_url) == [] and "first_t" not in tables(database_url)
