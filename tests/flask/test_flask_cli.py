"""``flask db`` through the extension: the same commands, the app's engine, Flask-Migrate aliases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from helpers import copy_scenario, history_versions, tables

from flask_pgmig import PgMig


def make_app(database_url: str, migrations: Path, **config: Any) -> Flask:
    app = Flask(__name__, root_path=str(migrations.parent))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url.replace("postgresql://", "postgresql+psycopg://", 1), **config
    )
    db = SQLAlchemy(app)
    PgMig(app, db)
    return app


def test_flask_db_migrate_status_rollback(database_url: str, tmp_path: Path) -> None:
    app = make_app(database_url, copy_scenario("basic", tmp_path))
    runner = app.test_cli_runner()
    status = runner.invoke(args=["db", "status", "--check"])
    assert status.exit_code == 1 and "pending" in status.output
    migrate = runner.invoke(args=["db", "migrate"])
    assert migrate.exit_code == 0, migrate.output
    assert "Applied 3 migrations" in migrate.output
    assert runner.invoke(args=["db", "status", "--check"]).exit_code == 0
    assert runner.invoke(args=["db", "rollback", "--steps", "1"]).exit_code == 0
    assert history_versions(database_url) == ["20260115093000", "20260116080000"]


def test_flask_migrate_aliases(database_url: str, tmp_path: Path) -> None:
    app = make_app(database_url, copy_scenario("basic", tmp_path))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    current = runner.invoke(args=["db", "current"])
    assert current.exit_code == 0 and "applied   20260117120000_index_users_email" in current.output
    assert runner.invoke(args=["db", "downgrade"]).exit_code == 0
    assert history_versions(database_url)[-1] == "20260116080000"
    help_text = runner.invoke(args=["db", "--help"]).output
    for command in ("init", "new", "status", "migrate", "rollback", "upgrade", "downgrade", "current"):
        assert f"  {command} " in help_text


def test_psycopg2_style_url_and_pgmig_database_url(
    database_url: str, make_database: Callable[[], str], tmp_path: Path
) -> None:
    migrations = copy_scenario("basic", tmp_path)
    app = Flask(__name__, root_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url  # postgresql://: SQLAlchemy's default driver
    PgMig(app, SQLAlchemy(app))
    assert app.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    assert "users" in tables(database_url)
    second = make_database()
    other = Flask(__name__, root_path=str(tmp_path))
    other.config.update(
        PGMIG_DATABASE_URL=second, PGMIG_TABLE="other_history", PGMIG_DIRECTORY=str(migrations)
    )
    PgMig(other)
    assert other.test_cli_runner().invoke(args=["db", "migrate"]).exit_code == 0
    assert history_versions(second, "public.other_history")[-1] == "20260117120000"


def test_double_registration_is_refused(tmp_path: Path) -> None:
    app = Flask(__name__, root_path=str(tmp_path))
    pgmig = PgMig(app)
    with pytest.raises(RuntimeError, match="already been registered"):
        pgmig.init_app(app)


def test_errors_are_one_line(database_url: str, tmp_path: Path) -> None:
    app = make_app(database_url, copy_scenario("concurrently_in_tx", tmp_path))
    result = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: Line 3 of '20260302000000_index_items.sql' has CREATE INDEX CONCURRENTLY"
    )
