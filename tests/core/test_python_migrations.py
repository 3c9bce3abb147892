"""Python migrations end to end on a real PostgreSQL: up/down, one transaction with the history row,
``transaction = False``, the whole file's checksum, and the Flask app handed to ``def up(conn, app)``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import copy_scenario, history_versions, pgmig, query, tables

from flask_pgmig.core.files import checksum
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.errors import ChecksumMismatch, MigrationFailed, MigrationParseError


def test_python_up_and_down_round_trip(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("python_basic", tmp_path)
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate(to="20260502000000")
    assert [r[0] for r in query(database_url, "SELECT body FROM notes ORDER BY id")] == ["first", "second"]
    row = query(
        database_url, "SELECT kind, checksum, status FROM pgmig_history WHERE version = '20260502000000'"
    )
    source = (migrations / "20260502000000_seed_notes.py").read_text(encoding="utf-8")
    assert row == [("py", checksum(source), "applied")]

    # one transaction with its history row: the row was written by the migration's own transaction
    marker = query(database_url, "SELECT xid FROM seed_marker")[0][0]
    writer = query(database_url, "SELECT xmin::text FROM pgmig_history WHERE version = '20260502000000'")
    assert writer == [(marker,)]

    migrator.rollback()
    assert query(database_url, "SELECT count(*) FROM notes") == [(0,)]
    assert "seed_marker" not in tables(database_url)
    assert history_versions(database_url) == ["20260501000000"]


def test_failing_transactional_python_migration_leaves_nothing(database_url: str, tmp_path: Path) -> None:
    migrator = Migrator.create(database_url, copy_scenario("python_fail", tmp_path))
    with pytest.raises(MigrationFailed) as caught:
        migrator.migrate()
    message = caught.value.message
    assert "'20260502000000_half_done' failed in up() at line 7 of '20260502000000_half_done.py'" in message
    assert "22012" in message and caught.value.line == 7
    assert caught.value.sqlstate == "22012" and caught.value.path.endswith("20260502000000_half_done.py")
    assert "half_done" not in tables(database_url)
    assert query(database_url, "SELECT count(*) FROM notes") == [(0,)]
    assert history_versions(database_url) == ["20260501000000"]
    assert query(database_url, "SELECT count(*) FROM pgmig_history WHERE version = '20260502000000'") == [
        (0,)
    ]


def test_transaction_false_commits_each_statement(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("python_basic", tmp_path)
    path = migrations / "20260503000000_batched.py"
    path.write_text(
        path.read_text(encoding="utf-8") + '    conn.execute("SELECT no_such_column FROM batched")\n', "utf-8"
    )
    with pytest.raises(MigrationFailed):
        Migrator.create(database_url, migrations).migrate()
    # unlike a transactional migration, what it committed before failing stays
    assert query(database_url, "SELECT step FROM batched ORDER BY step") == [(0,), (1,), (2,)]
    assert history_versions(database_url) == ["20260501000000", "20260502000000"]


def test_checksum_covers_the_whole_file(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("python_basic", tmp_path)
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate()
    path = migrations / "20260502000000_seed_notes.py"
    # an edit in down() only, which never ran, still changes the migration's checksum
    path.write_text(
        path.read_text(encoding="utf-8").replace("DROP TABLE seed_marker", "DROP TABLE x"), "utf-8"
    )
    assert [m.state for m in migrator.status().migrations][1] == "modified"
    with pytest.raises(ChecksumMismatch):
        migrator.migrate()


def test_up_with_two_parameters_receives_the_app(database_url: str, tmp_path: Path) -> None:
    app = SimpleNamespace(config={"GREETING": "hello from the app"})
    migrator = Migrator.create(database_url, copy_scenario("python_app", tmp_path), context=app)
    migrator.migrate()
    assert query(database_url, "SELECT body FROM notes") == [("hello from the app",)]
    migrator.rollback()
    assert query(database_url, "SELECT count(*) FROM notes") == [(0,)]


# the files are read before any connection is made: no database is needed to refuse them
NOWHERE = "postgresql://nobody@127.0.0.1:1/nothing"


def test_python_migration_without_up_is_refused_before_anything_runs(tmp_path: Path) -> None:
    migrations = copy_scenario("python_basic", tmp_path)
    (migrations / "20260504000000_broken.py").write_text("def upp(conn):\n    pass\n", "utf-8")
    with pytest.raises(MigrationParseError) as caught:
        Migrator.create(NOWHERE, migrations).migrate()
    assert "'20260504000000_broken.py'" in caught.value.message and "def up(conn)" in caught.value.message


def test_python_syntax_error_names_the_line(tmp_path: Path) -> None:
    migrations = copy_scenario("python_basic", tmp_path)
    (migrations / "20260504000000_broken.py").write_text("def up(conn):\n    return (\n", "utf-8")
    with pytest.raises(MigrationParseError) as caught:
        Migrator.create(NOWHERE, migrations).status()
    assert caught.value.message.startswith("Line ") and "'20260504000000_broken.py'" in caught.value.message


def test_flask_db_hands_the_flask_app_to_up(database_url: str, tmp_path: Path) -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_pgmig import PgMig

    migrations = copy_scenario("python_app", tmp_path)
    app = Flask(__name__, root_path=str(migrations.parent))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url.replace("postgresql://", "postgresql+psycopg://", 1),
        GREETING="from flask db",
    )
    PgMig(app, SQLAlchemy(app))
    result = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert result.exit_code == 0, result.output
    assert query(database_url, "SELECT body FROM notes") == [("from flask db",)]


def test_new_python_writes_a_migration_that_runs(database_url: str, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    base = ["--database-url", database_url, "--directory", str(migrations)]
    created = pgmig(*base, "new", "add things", "--python")
    assert created.returncode == 0, created.stderr
    [path] = migrations.iterdir()
    assert path.name.endswith("_add_things.py") and "def up(conn)" in path.read_text(encoding="utf-8")
    migrate = pgmig(*base, "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert query(database_url, "SELECT kind, status FROM pgmig_history") == [("py", "applied")]


def test_a_python_exception_is_an_error_message_not_a_traceback(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("python_basic", tmp_path)
    (migrations / "20260504000000_buggy.py").write_text(
        "transaction = False\n\n\ndef up(conn):\n"
        "    timeout = conn.execute('SHOW lock_timeout').fetchone()[0]\n"
        "    raise LookupError('lock_timeout is ' + timeout)\n",
        "utf-8",
    )
    base = ["--database-url", database_url, "--directory", str(migrations)]
    result = pgmig(*base, "migrate", env={"PGMIG_LOCK_TIMEOUT": "7s"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    # a transaction = False migration still runs its statements under the short lock_timeout
    assert result.stderr.strip() == (
        "Error: Python migration '20260504000000_buggy' raised LookupError in up() at line 6 of "
        "'20260504000000_buggy.py': lock_timeout is 7s. Fix '20260504000000_buggy.py' and run again."
    )
