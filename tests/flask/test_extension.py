"""``PgMig`` / ``init_app``: app factories, several apps, double registration, config, the CLI group and its help."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import NOWHERE, build_app, with_driver
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from helpers import copy_scenario, history_versions, tables

from flask_pgmig import PgMig
from flask_pgmig.core.config import KEYS
from flask_pgmig.errors import ConfigError
from flask_pgmig.extension import PgMigState

pgmig = PgMig()  # module level, as an app would have it in extensions.py


def create_app(root: Path, database_url: str, **config: object) -> Flask:
    """An app factory in the flask-sqlalchemy style: the extension object is shared, the app is new."""
    app = Flask("factory_app", root_path=str(root))
    app.config.update(SQLALCHEMY_DATABASE_URI=with_driver(database_url, "psycopg"), **config)
    db = SQLAlchemy(app)
    pgmig.init_app(app, db)
    return app


def test_app_factory_two_apps_in_one_process(make_database: Callable[[], str], tmp_path: Path) -> None:
    copy_scenario("basic", tmp_path)
    first_url, second_url = make_database(), make_database()
    first = create_app(tmp_path, first_url)
    second = create_app(tmp_path, second_url, PGMIG_TABLE="second_history")
    assert isinstance(first.extensions["pgmig"], PgMigState)
    assert first.extensions["pgmig"] is not second.extensions["pgmig"]
    assert first.extensions["pgmig"].extension is pgmig

    result = first.test_cli_runner().invoke(args=["db", "migrate"])
    assert result.exit_code == 0, result.output
    assert "users" in tables(first_url) and "users" not in tables(second_url)
    assert second.test_cli_runner().invoke(args=["db", "migrate", "--to", "20260115093000"]).exit_code == 0
    assert history_versions(second_url, "public.second_history") == ["20260115093000"]
    assert len(history_versions(first_url)) == 3  # the first app's database was not touched by the second
    with second.app_context():
        assert pgmig.state().app is second
        assert pgmig.check().counts["pending"] == 2
    assert pgmig.check(first).ok


def test_double_registration_is_refused_with_a_helpful_message(tmp_path: Path) -> None:
    app = Flask("twice", root_path=str(tmp_path))
    first = PgMig(app)
    with pytest.raises(
        RuntimeError, match=r"already been registered on the Flask app 'twice'.*Call 'init_app' once"
    ):
        first.init_app(app)
    with pytest.raises(RuntimeError, match="already been registered"):
        PgMig(app)  # a second instance is refused as well
    assert app.extensions["pgmig"].extension is first


def test_state_outside_an_app_and_on_an_unregistered_app(tmp_path: Path) -> None:
    extension = PgMig()
    with pytest.raises(RuntimeError, match="No Flask app is active"):
        extension.state()
    with pytest.raises(RuntimeError, match=r"Did you forget to call 'pgmig.init_app\(app\)'"):
        extension.state(Flask("bare", root_path=str(tmp_path)))


def test_every_key_gets_its_default_and_is_read_once(tmp_path: Path) -> None:
    app = build_app(tmp_path, PGMIG_DATABASE_URL=NOWHERE, PGMIG_LOCK_TIMEOUT="2s")
    for key in KEYS:
        if key.name not in ("PGMIG_DATABASE_URL", "PGMIG_LOCK_TIMEOUT"):
            assert app.config[key.name] == key.default, key.name
    state = app.extensions["pgmig"]
    assert state.settings.lock_timeout_ms == 2000
    assert state.directory() == tmp_path / "migrations"  # the default is inside the app package
    app.config["PGMIG_LOCK_TIMEOUT"] = "9s"  # after init_app: not read again
    assert app.extensions["pgmig"].settings.lock_timeout_ms == 2000


def test_directory_relative_to_root_path_and_constructor_override(tmp_path: Path) -> None:
    app = build_app(tmp_path, PGMIG_DATABASE_URL=NOWHERE, PGMIG_DIRECTORY="db/migrations")
    assert app.extensions["pgmig"].directory() == tmp_path / "db" / "migrations"
    other = build_app(
        tmp_path,
        PGMIG_DATABASE_URL=NOWHERE,
        PGMIG_DIRECTORY="ignored",
        extension=PgMig(directory="mine"),
    )
    assert other.extensions["pgmig"].directory() == tmp_path / "mine"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("PGMIG_GUARD", "maybe", "PGMIG_GUARD is 'maybe'; use one of 'off', 'warn', 'error'."),
        ("PGMIG_LOCK_TIMEOUT", "soon", "PGMIG_LOCK_TIMEOUT is 'soon', which is not a duration."),
        ("PGMIG_HEALTH_ENDPOINT", "health", "PGMIG_HEALTH_ENDPOINT is 'health'; it must start with '/'."),
        ("PGMIG_BINDS", ["analytics"], "PGMIG_BINDS is a list; make it a dict"),
    ],
)
def test_invalid_config_fails_init_app(tmp_path: Path, key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_app(tmp_path, **{key: value})
    assert message in caught.value.message


def test_cli_group_name_is_configurable(database_url: str, tmp_path: Path) -> None:
    copy_scenario("basic", tmp_path)
    app = build_app(tmp_path, extension=PgMig(command="migrations"), PGMIG_DATABASE_URL=database_url)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["migrations", "migrate"])
    assert result.exit_code == 0, result.output
    assert "Applied 3 migrations" in result.output
    assert runner.invoke(args=["db", "status"]).exit_code == 2  # no 'db' group on this app
    status = runner.invoke(args=["migrations", "status", "--check"])
    assert status.exit_code == 0 and app.extensions["pgmig"].command == "flask migrations"


def test_help_lists_every_command_with_a_one_line_description(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    result = app.test_cli_runner().invoke(args=["db", "--help"])
    assert result.exit_code == 0
    group = app.cli.get_command(click.Context(app.cli), "db")
    assert isinstance(group, click.Group)
    names = group.list_commands(click.Context(group))
    assert {"init", "new", "status", "migrate", "rollback", "upgrade", "downgrade", "current"} <= set(names)
    lines = result.output.splitlines()
    for name in names:
        line = next((line for line in lines if line.strip().split(" ")[0] == name), None)
        assert line is not None, f"{name} missing from:\n{result.output}"
        description = line.strip()[len(name) :].strip()
        assert description and not description.endswith("..."), f"{name}: {line!r}"


def test_aliases_run_the_same_commands(database_url: str, make_app: Callable[..., Flask]) -> None:
    app = make_app(PGMIG_DATABASE_URL=database_url)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "--to", "20260116080000"]).exit_code == 0
    current = runner.invoke(args=["db", "current"])
    assert current.exit_code == 0
    assert "applied   20260116080000_add_users_name" in current.output
    assert "pending   20260117120000_index_users_email" in current.output
    assert runner.invoke(args=["db", "current", "--check"]).exit_code == 1
    assert runner.invoke(args=["db", "downgrade", "--steps", "2"]).exit_code == 0
    assert history_versions(database_url) == []


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("none", "Error: No database for migrations: pass the Flask-SQLAlchemy 'db' to PgMig(app, db)"),
        ("sqlite", "is 'sqlite', and flask-pgmig migrates PostgreSQL only"),
        ("bind", "PGMIG_BIND is 'reports', but Flask-SQLAlchemy has no engine for that bind"),
    ],
)
def test_configuration_errors_are_one_line(tmp_path: Path, setup: str, message: str) -> None:
    copy_scenario("basic", tmp_path)
    if setup == "none":
        app = build_app(tmp_path)
    elif setup == "sqlite":  # never connected to: only the dialect is looked at
        app = build_app(tmp_path, sqlalchemy_url="sqlite://")
    else:
        app = build_app(tmp_path, sqlalchemy_url="postgresql+psycopg://u@127.0.0.1/x", PGMIG_BIND="reports")
    result = app.test_cli_runner().invoke(args=["db", "status"])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_db_not_initialised_on_the_app(tmp_path: Path) -> None:
    copy_scenario("basic", tmp_path)
    app = Flask("late_db", root_path=str(tmp_path))
    PgMig(app, SQLAlchemy())  # db.init_app(app) forgotten
    result = app.test_cli_runner().invoke(args=["db", "status"])
    assert result.exit_code == 1
    assert "Call 'db.init_app(app)' before 'pgmig.init_app(app, db)'" in result.output
