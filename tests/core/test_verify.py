"""Tests for flask_pgmig.core.verify (up -> down -> up with catalog snapshots) and core.dry_run (--execute).

Both on a real PostgreSQL; "changed nothing" is always proven by comparing catalog snapshots before and after.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from helpers import SCENARIOS, copy_scenario, history_versions, query

from flask_pgmig.core.events import Events
from flask_pgmig.core.migrator import Migrator, Settings
from flask_pgmig.core.snapshot import snapshot
from flask_pgmig.core.verify import scratch_database, verify_directory
from flask_pgmig.errors import ConfigError


def settings(directory: Path) -> Settings:
    return Settings(directory=directory, lock_retries=0)


def catalog(url: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        return snapshot(conn, exclude=[])  # the history table too: a dry run must not create it


class Notices(Events):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def notice(self, message: str) -> None:
        self.lines.append(message)


# --- verify --------------------------------------------------------------------------------------------------


def test_verify_names_each_forgotten_index_enum_label_and_default(
    database_url: str, pg_server_url: str
) -> None:
    events = Notices()
    migrator = Migrator(pg_server_url, settings(SCENARIOS / "verify_forgetful"), events=events)
    report = migrator.verify(database_url)  # the Migrator's own database is not touched: only the scratch one
    leftovers = [line for line in report.differences if ": down " in line]
    assert leftovers == [
        "20260102000000_index_users_email: down leaves index users_status_idx behind",
        "20260103000000_add_status_archived: down leaves enum label user_status.'archived' behind",
        "20260104000000_add_users_plan: down leaves the default of column users.email as ''::text "
        "(before the up: none)",
    ]
    # What the down left behind makes the second up fail; verify says so and goes on with the next migration.
    assert any(
        line.startswith("20260102000000_index_users_email: up, run again after its down, fails at line 3 of ")
        and 'relation "users_status_idx" already exists' in line
        for line in report.differences
    )
    assert report.irreversible == ["20260105000000_seed_note"] and not report.ok
    assert "verify 20260104000000_add_users_plan" in events.lines


def test_verify_passes_a_directory_whose_downs_reverse_exactly(database_url: str) -> None:
    report = verify_directory(database_url, settings(SCENARIOS / "verify_clean"))
    assert report.differences == [] and report.ok
    assert len(report.checked) == 7 and report.irreversible == ["20260108000000_seed"]


def test_irreversible_fails_only_when_strict(tmp_path: Path, database_url: str) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20260101000000_t.sql").write_text("-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\n"
                                                    "DROP TABLE t;\n")  # fmt: skip
    (directory / "20260102000000_seed.sql").write_text("-- migrate:up\nINSERT INTO t VALUES (1);\n")
    strict = verify_directory(database_url, settings(directory), strict=True)
    assert strict.checked == ["20260101000000_t"] and strict.differences == []
    assert strict.irreversible == ["20260102000000_seed"] and not strict.ok
    assert replace(strict, strict=False).ok


def test_failing_up_stops_with_file_and_line(database_url: str) -> None:
    report = verify_directory(database_url, settings(SCENARIOS / "sql_error_third"))
    assert report.checked == ["20260401000000_step_1", "20260402000000_step_2"]
    (line,) = report.differences
    assert line.startswith(
        "20260403000000_step_3: up fails at line 6 of '20260403000000_step_3.sql' (SQLSTATE 42704)"
    )


def test_failing_down_and_second_up_that_differs(tmp_path: Path, database_url: str) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20260101000000_a.sql").write_text("-- migrate:up\nCREATE TABLE a (id int);\n-- migrate:down\n"
                                                    "DROP TABLE nosuch;\n")  # fmt: skip
    (directory / "20260102000000_t.sql").write_text(
        "-- migrate:up\nCREATE TABLE IF NOT EXISTS t (id int);\nALTER TABLE t ADD COLUMN IF NOT EXISTS n int;\n"
        "-- migrate:down\nALTER TABLE t DROP COLUMN n;\nALTER TABLE t ADD COLUMN extra int;\n"
    )
    report = verify_directory(database_url, settings(directory))
    assert report.differences[0].startswith(
        "20260101000000_a: down fails at line 4 of '20260101000000_a.sql' (SQLSTATE 42P01)"
    )
    assert report.differences[1:] == [
        "20260102000000_t: down leaves column t.extra behind",
        "20260102000000_t: down leaves column t.id behind",
        "20260102000000_t: down leaves table t behind",
        "20260102000000_t: up run again after its down gives a different schema: column t.extra appears",
    ]


def test_refuses_a_database_that_is_not_empty(database_url: str) -> None:
    query(database_url, "CREATE TABLE precious (id int)")
    with pytest.raises(ConfigError, match=r"verify needs an empty scratch database.*table precious"):
        verify_directory(database_url, settings(SCENARIOS / "basic"))
    assert query(database_url, "SELECT count(*) FROM precious") == [(0,)]
    # A scratch database made from a template1 that holds objects is fine: they are part of "before".
    assert verify_directory(database_url, settings(SCENARIOS / "tenants"), require_empty=False).ok
    assert query(database_url, "SELECT count(*) FROM precious") == [(0,)]


def test_scratch_database_is_created_and_dropped(pg_server_url: str) -> None:
    with scratch_database(pg_server_url) as dsn:
        name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        assert str(name).startswith("pgmig_verify_")
        report = verify_directory(dsn, settings(SCENARIOS / "tenants"))
        assert report.ok and len(report.checked) == 2
    assert query(pg_server_url, "SELECT 1 FROM pg_database WHERE datname = %s", [name]) == []


# --- migrate --dry-run [--execute] ---------------------------------------------------------------------------


def test_dry_run_and_dry_run_execute_change_nothing(database_url: str) -> None:
    migrator = Migrator(database_url, settings(SCENARIOS / "basic"))
    before = catalog(database_url)
    result = migrator.migrate(dry_run=True)
    assert [m.id for m in result.planned] == [
        "20260115093000_create_users", "20260116080000_add_users_name", "20260117120000_index_users_email",
    ]  # fmt: skip
    assert catalog(database_url) == before
    executed = migrator.dry_run_execute()
    assert executed.ok and [e.id for e in executed.executed] == [
        "20260115093000_create_users", "20260116080000_add_users_name",
    ]  # fmt: skip
    reason = "not executed: it is transaction:false, and what it does cannot be rolled back"
    assert executed.skipped == [("20260117120000_index_users_email", reason)]
    assert catalog(database_url) == before


def test_dry_run_execute_reports_the_failing_migration(tmp_path: Path, database_url: str) -> None:
    migrations = copy_scenario("sql_error_third", tmp_path)
    migrator = Migrator(database_url, settings(migrations))
    migrator.migrate(to="20260401000000")
    before = catalog(database_url)
    result = migrator.dry_run_execute()
    assert [e.id for e in result.executed] == ["20260402000000_step_2"]
    assert result.failed is not None and result.failed[0] == "20260403000000_step_3"
    assert "line 6" in result.failed[1] and "nosuchtype" in result.failed[1]
    assert [s[0] for s in result.skipped] == ["20260404000000_step_4", "20260405000000_step_5"]
    assert catalog(database_url) == before and history_versions(database_url) == ["20260401000000"]
    plan = migrator.rollback(dry_run=True)
    assert [step.version for step in plan.rollback_plan] == ["20260401000000"]
    assert catalog(database_url) == before and history_versions(database_url) == ["20260401000000"]
