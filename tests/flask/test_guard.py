"""The startup guard (PGMIG_GUARD): refuse or warn at app creation, read-only, skipped for ``flask db``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import NOWHERE, AppFactory, with_driver, write_migration
from helpers import copy_scenario, history_versions, query, tables

from flask_pgmig import guard
from flask_pgmig.core import quick_status
from flask_pgmig.core.lock import lock_key
from flask_pgmig.errors import ConnectionFailed, HistoryError, MigrationFileError, PendingMigrationsError

FLASK = Path(sys.executable).with_name("flask")


def every_kind_of_problem(database_url: str, directory: Path) -> None:
    """A database with one modified, one missing, one failed and one pending migration."""
    write_migration(directory, "20260101000000", "create_a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    write_migration(directory, "20260102000000", "create_b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    failing = write_migration(directory, "20260103000000", "fails", "CREATE TABLE c (id int);\nSELECT 1/0;")
    failing.write_text(failing.read_text().replace("-- migrate:up", "-- migrate:up transaction:false"))
    write_migration(directory, "20260104000000", "create_d", "CREATE TABLE d (id int);")
    result = subprocess.run(
        [sys.executable, "-m", "flask_pgmig.cli", "--database-url", database_url, "--directory", str(directory),
         "migrate"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "division by zero" in result.stderr, result.stderr
    (directory / "20260101000000_create_a.sql").write_text("-- migrate:up\nCREATE TABLE a (id bigint);\n")
    (directory / "20260102000000_create_b.sql").unlink()


def test_error_lists_every_problem_and_the_fix(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    every_kind_of_problem(database_url, tmp_path / "migrations")
    with pytest.raises(PendingMigrationsError) as caught:
        make_app(scenario=None, PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error")
    error = caught.value
    assert error.problems == [
        "pending: 20260104000000_create_d",
        "modified: 20260101000000_create_a",
        "missing: 20260102000000_create_b",
        "failed: 20260103000000_fails",
    ]
    assert error.message.startswith(f"The database '{database_url}' is not up to date with its migrations: ")
    assert "1 pending ('20260104000000_create_d')" in error.message
    assert "'flask db migrate --resume' or 'flask db repair --mark-applied 20260103000000'" in error.message
    assert "'flask db repair --accept-checksum 20260101000000'" in error.message
    assert error.message.endswith("run 'flask db migrate' ('flask db status' shows the details).")


def test_a_long_list_is_named_in_part_and_given_in_full_in_problems(
    make_app: AppFactory, database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "migrations"
    for day in range(1, 9):
        write_migration(directory, f"202601{day:02d}000000", f"create_t{day}", f"CREATE TABLE t{day} (id int);")
    with pytest.raises(PendingMigrationsError) as caught:
        make_app(scenario=None, PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error")
    named = ", ".join(f"'202601{day:02d}000000_create_t{day}'" for day in range(1, 6))
    assert f"8 pending ({named} and 3 more)." in caught.value.message
    assert "create_t6" not in caught.value.message
    assert caught.value.problems == [f"pending: 202601{day:02d}000000_create_t{day}" for day in range(1, 9)]


def test_warn_logs_through_app_logger_and_boots(
    make_app: AppFactory, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app = make_app(PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="warn")
    records = [r for r in caplog.records if r.name == app.logger.name]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "3 pending ('20260115093000_create_users'" in records[0].getMessage()
    assert "run 'flask db migrate'" in records[0].getMessage()


def test_up_to_date_boots_silently(
    make_app: AppFactory, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(PGMIG_DATABASE_URL=database_url)
    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    with caplog.at_level(logging.WARNING):
        make_app(PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error")
        make_app(PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="warn")
    assert caplog.records == []


def test_guard_is_read_only(make_app: AppFactory, database_url: str) -> None:
    with pytest.raises(PendingMigrationsError):
        make_app(sqlalchemy_url=with_driver(database_url, "psycopg"), PGMIG_GUARD="error")
    assert tables(database_url) == set()  # no history table, no audit table, nothing
    assert query(database_url, "SELECT count(*) FROM pg_namespace WHERE nspname NOT LIKE 'pg_%'") == [(2,)]


def test_guard_takes_no_lock(make_app: AppFactory, database_url: str) -> None:
    app = make_app(PGMIG_DATABASE_URL=database_url, PGMIG_LOCK_WAIT="0s")
    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    dbname = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [lock_key(dbname, "public", "pgmig_history")])
        # The lock is the one migrate and rollback take: a rollback cannot get it ...
        locked_out = app.test_cli_runner().invoke(args=["db", "rollback"])
        assert locked_out.exit_code == 1 and "lock" in locked_out.output.lower(), locked_out.output
        # ... while the guard boots the app with it held, under "error".
        make_app(PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error", PGMIG_LOCK_WAIT="0s")
    assert history_versions(database_url)[-1] == "20260117120000"


def test_unreachable_database(make_app: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    nowhere = NOWHERE
    with pytest.raises(ConnectionFailed) as caught:
        make_app(PGMIG_DATABASE_URL=nowhere, PGMIG_GUARD="error")
    assert caught.value.message.startswith(f"Could not connect to PostgreSQL at '{nowhere}'")
    assert caught.value.message.endswith(
        "The startup guard (PGMIG_GUARD = 'error') could not check the migrations; set PGMIG_GUARD = 'warn' "
        "to boot without the check."
    )
    with caplog.at_level(logging.WARNING):
        app = make_app(PGMIG_DATABASE_URL=nowhere, PGMIG_GUARD="warn")
    assert any("Could not connect to PostgreSQL" in r.getMessage() for r in caplog.records)
    assert app.extensions["pgmig"].guard == "warn"


def _sessions_on(database_url: str) -> int:
    dbname = database_url.rsplit("/", 1)[1]
    rows = query(
        database_url,
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{dbname}' AND pid <> pg_backend_pid()",
    )
    return int(rows[0][0])


def test_a_guard_that_fails_on_the_files_closes_the_connection_it_was_opening(
    make_app: AppFactory, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard connects while it reads the files; when a file fails first, the connection still goes.
    real_read = quick_status.read_bytes

    def read_failing_on_users(path: str, display: str) -> bytes:
        if "create_users" in display:
            raise MigrationFileError(f"Could not read migration file '{display}': I/O error.", paths=[path])
        return real_read(path, display)

    monkeypatch.setattr(quick_status, "read_bytes", read_failing_on_users)
    for _ in range(5):
        with pytest.raises(MigrationFileError, match="create_users"):
            make_app(PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error")
    deadline = time.monotonic() + 10
    while _sessions_on(database_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions_on(database_url) == 0


def test_a_missing_directory_is_reported_without_connecting(
    make_app: AppFactory, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_connect = guard.connect

    def counting_connect(dsn: str, **kwargs: Any) -> psycopg.Connection[Any]:
        opened.append(dsn)
        return real_connect(dsn, **kwargs)

    monkeypatch.setattr(guard, "connect", counting_connect)
    with pytest.raises(MigrationFileError, match="does not exist"):
        make_app(
            scenario=None, PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error", PGMIG_DIRECTORY=tmp_path / "nope"
        )
    assert opened == []  # no login for nothing, no thread left behind in an app that boots under 'warn'
    make_app(PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="warn")
    assert opened == [database_url]


def test_a_guard_that_fails_on_the_history_table_closes_its_connection(
    make_app: AppFactory, database_url: str
) -> None:
    query(database_url, "CREATE TABLE pgmig_history (nothing int)")  # no version column: not ours
    for _ in range(3):
        with pytest.raises(HistoryError, match=r"Reading the history table 'public\.pgmig_history' failed"):
            make_app(PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error")
    assert _sessions_on(database_url) == 0


APP_MODULE = """
    import os
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy
    from flask_pgmig import PgMig

    db = SQLAlchemy()
    pgmig = PgMig()

    def create_app():
        app = Flask(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["GUARDED_DB"]
        app.config["PGMIG_GUARD"] = "error"
        db.init_app(app)
        pgmig.init_app(app, db)
        return app
"""


def test_flask_db_commands_skip_the_guard(database_url: str, tmp_path: Path) -> None:
    """The real ``flask`` command: other commands refuse to load the app; ``flask db migrate`` fixes it."""
    (tmp_path / "guarded_app.py").write_text(textwrap.dedent(APP_MODULE))
    copy_scenario("basic", tmp_path)
    env = {**os.environ, "GUARDED_DB": with_driver(database_url, "psycopg"), "PYTHONPATH": str(tmp_path)}

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(FLASK), "--app", "guarded_app:create_app", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, check=False)

    refused = flask("routes")
    assert refused.returncode != 0, refused.stdout
    assert "PendingMigrationsError" in refused.stderr and "run 'flask db migrate'" in refused.stderr, (
        refused.stderr
    )
    migrated = flask("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert history_versions(database_url)[-1] == "20260117120000"
    routes = flask("routes")
    assert "/static/<path:filename>" in routes.stdout, routes.stderr  # the guard lets the app load now
