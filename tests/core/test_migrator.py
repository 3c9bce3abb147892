"""The Migrator end to end on a real PostgreSQL: migrate, status, rollback, integrity, errors."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from helpers import copy_scenario, history_versions, query, tables

from flask_pgmig.core.migrator import Migrator
from flask_pgmig.errors import (
    ChecksumMismatch,
    ConnectionFailed,
    MigrationFailed,
    MigrationParseError,
)


def make(url: str, directory: Path, **options: object) -> Migrator:
    return Migrator.create(url, directory, **options)


def test_migrate_status_rollback_round_trip(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    migrator = make(database_url, migrations)
    assert [m.state for m in migrator.status().migrations] == ["pending"] * 3
    assert "pgmig_history" not in tables(database_url)  # status is read-only: no DDL

    result = migrator.migrate()
    assert [s.id for s in result.steps] == [
        "20260115093000_create_users",
        "20260116080000_add_users_name",
        "20260117120000_index_users_email",
    ]
    assert migrator.status().clean
    assert query(database_url, "SELECT indexname FROM pg_indexes WHERE indexname = 'users_email_idx'")
    rows = query(
        database_url, "SELECT version, status, down_sql IS NOT NULL, applied_by FROM pgmig_history ORDER BY 1"
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("20260115093000", "applied", True),
        ("20260116080000", "applied", True),
        ("20260117120000", "applied", True),
    ]

    assert migrator.migrate().steps == ()  # nothing pending: nothing runs

    rolled = migrator.rollback(steps=2)
    assert [s.version for s in rolled.steps] == ["20260117120000", "20260116080000"]
    assert history_versions(database_url) == ["20260115093000"]
    columns = query(
        database_url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
    )
    assert {c[0] for c in columns} == {"id", "email"}

    migrator.rollback(everything=True)
    assert tables(database_url) == {"pgmig_history", "pgmig_history_audit"}
    audit = query(database_url, "SELECT action, outcome FROM pgmig_history_audit ORDER BY id")
    assert audit == [("migrate", "ok"), ("rollback", "ok"), ("rollback", "ok")]


def test_migrate_to_and_rollback_to(database_url: str, tmp_path: Path) -> None:
    migrator = make(database_url, copy_scenario("basic", tmp_path))
    migrator.migrate(to="20260116080000")
    assert history_versions(database_url) == ["20260115093000", "20260116080000"]
    migrator.migrate()
    migrator.rollback(to="20260115093000")
    assert history_versions(database_url) == ["20260115093000"]


def test_dollar_bodies_strings_and_marker_lookalikes(database_url: str, tmp_path: Path) -> None:
    migrator = make(database_url, copy_scenario("dollar_bodies", tmp_path))
    migrator.migrate()
    assert query(database_url, "SELECT log_note('x'), tagged()") == [(4, "a;b;c")]
    notes = [r[0] for r in query(database_url, "SELECT note FROM audit_events ORDER BY id")]
    assert notes[1] == "escaped ' quote; still one statement"
    migrator.rollback()
    assert "audit_events" not in tables(database_url)


def test_concurrently_in_transactional_migration_is_refused_before_anything_runs(
    database_url: str, tmp_path: Path
) -> None:
    migrator = make(database_url, copy_scenario("concurrently_in_tx", tmp_path))
    with pytest.raises(MigrationParseError) as caught:
        migrator.migrate()
    message = str(caught.value)
    assert "Line 3 of '20260302000000_index_items.sql' has CREATE INDEX CONCURRENTLY" in message
    assert "transaction:false" in message
    assert tables(database_url) == set()  # not even the first migration or the history table


def test_sql_error_in_third_of_five(database_url: str, tmp_path: Path) -> None:
    migrator = make(database_url, copy_scenario("sql_error_third", tmp_path))
    with pytest.raises(MigrationFailed) as caught:
        migrator.migrate()
    error = caught.value
    assert (error.version, error.line, error.column, error.sqlstate) == ("20260403000000", 6, 23, "42704")
    assert "line 6, column 23 of '20260403000000_step_3.sql'" in str(error)
    assert 'type "nosuchtype" does not exist' in str(error)
    assert history_versions(database_url) == ["20260401000000", "20260402000000"]
    assert tables(database_url) >= {"step_1", "step_2"} and "step_3" not in tables(database_url)
    audit = query(database_url, "SELECT outcome, versions, detail->>'error' FROM pgmig_history_audit")
    assert audit[0][0] == "failed" and audit[0][1] == ["20260401000000", "20260402000000"]
    assert "nosuchtype" in audit[0][2]


def test_edited_applied_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    migrator = make(database_url, migrations)
    migrator.migrate(to="20260115093000")
    path = migrations / "20260115093000_create_users.sql"
    path.write_text(path.read_text().replace("email text NOT NULL", "email varchar(200) NOT NULL"))
    with pytest.raises(
        ChecksumMismatch, match="20260115093000_create_users' was applied but its file has changed"
    ):
        migrator.migrate()
    assert history_versions(database_url) == ["20260115093000"]
    assert [m.state for m in migrator.status().migrations] == ["modified", "pending", "pending"]


def test_missing_file_rolls_back_from_stored_source(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    migrator = make(database_url, migrations)
    migrator.migrate()
    (migrations / "20260117120000_index_users_email.sql").unlink()
    assert migrator.status().migrations[-1].state == "missing"
    migrator.rollback()
    assert not query(database_url, "SELECT 1 FROM pg_indexes WHERE indexname = 'users_email_idx'")


def test_history_in_a_custom_schema_and_table(database_url: str, tmp_path: Path) -> None:
    migrator = make(database_url, copy_scenario("basic", tmp_path), schema="ops", table="schema_log")
    migrator.migrate()
    assert history_versions(database_url, "ops.schema_log")[-1] == "20260117120000"


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    migrator = make("postgresql://app:hunter2-SECRET@127.0.0.1:1/app", copy_scenario("basic", tmp_path))
    with pytest.raises(ConnectionFailed) as caught:
        migrator.status()
    assert "hunter2" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_a_down_section_its_transaction_cannot_run_is_refused_before_anything_is_reverted(
    database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20260801000000_first.sql").write_text(
        "-- migrate:up\nCREATE TABLE first_t (id int);\n-- migrate:down\nDROP TABLE first_t;\nCOMMIT;\nSELECT 1;\n"
    )
    (directory / "20260802000000_second.sql").write_text(
        "-- migrate:up\nCREATE TABLE second_t (id int);\n"
        "-- migrate:down\nDROP TABLE second_t;\nCREATE INDEX CONCURRENTLY first_id ON first_t (id);\n"
    )
    migrator = Migrator.create(database_url, directory)
    migrator.migrate()
    with pytest.raises(MigrationParseError, match=r"20260802000000_second\.sql"):
        migrator.rollback(everything=True, dry_run=True)  # the preview says so too
    with pytest.raises(MigrationParseError) as caught:
        migrator.rollback(everything=True)
    # the newest is reverted first, so it is named first; and nothing of either was reverted
    assert "Line 5 of '20260802000000_second.sql'" in str(caught.value)
    assert "'-- migrate:down transaction:false'" in str(caught.value)
    assert history_versions(database_url) == ["20260801000000", "20260802000000"]
    assert {"first_t", "second_t"} <= tables(database_url)
    (directory / "20260802000000_second.sql").write_text(
        "-- migrate:up\nCREATE TABLE second_t (id int);\n-- migrate:down\nDROP TABLE second_t;\n"
    )
    migrator = Migrator.create(database_url, directory)
    migrator.repair("accept-checksum", "20260802000000")
    with pytest.raises(MigrationParseError, match=r"Line 5 of '20260801000000_first.sql' has .*COMMIT"):
        migrator.rollback(everything=True)
    assert history_versions(database_url) == ["20260801000000", "20260802000000"]
    migrator.rollback(to="20260801000000")  # the second one alone can be reverted
    assert history_versions(database_url) == ["20260801000000"] and "second_t" not in tables(database_url)


@pytest.mark.parametrize("atomic", [False, True])
def test_a_latin1_database_stores_the_characters_the_file_holds(
    pg_server_url: str, tmp_path: Path, atomic: bool
) -> None:
    # migration files are UTF-8: the connection says so, and the server converts to the database's encoding
    name = f"pgmig_test_latin1_{os.getpid()}_{int(atomic)}"
    query(pg_server_url, f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'")
    url = pg_server_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrations = tmp_path / "m"
        migrations.mkdir()
        (migrations / "20260801000000_words.sql").write_text(
            "-- migrate:up\nCREATE TABLE words (w text);\nINSERT INTO words VALUES ('café');\n"
            "-- migrate:down\nDROP TABLE words;\n", encoding="utf-8"
        )  # fmt: skip
        make(url, migrations).migrate(atomic=atomic)
        with psycopg.connect(url, client_encoding="UTF8") as conn:
            assert conn.execute("SELECT w, octet_length(convert_to(w, 'LATIN1')) FROM words").fetchall() == [
                ("café", 4)
            ]  # fmt: skip
        (migrations / "20260802000000_arrow.sql").write_text(
            "-- migrate:up\nINSERT INTO words VALUES ('a');\nINSERT INTO words VALUES ('→');\n", encoding="utf-8"
        )
        with pytest.raises(MigrationFailed) as caught:
            make(url, migrations).migrate(atomic=atomic)
        assert "line 3, column 1 of '20260802000000_arrow.sql'" in str(caught.value), str(caught.value)
        assert "LATIN1" in str(caught.value)
        assert history_versions(url) == ["20260801000000"] and query(url, "SELECT count(*) FROM words") == [(1,)]
    finally:
        query(pg_server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
