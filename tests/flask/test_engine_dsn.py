"""The DSN of an SQLAlchemy engine (flask_pgmig.engine_dsn), without connecting, and how the flask CLI is detected.

Nothing here reaches a server: building an SQLAlchemy engine does not connect, and the capture stops before the
driver is called (the engines point at port 1, where nothing listens, to make sure of it).
"""

from __future__ import annotations

import logging
import ssl
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from conftest import build_app
from flask import Flask
from flask.cli import FlaskGroup
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy import create_engine
from sqlalchemy.pool import QueuePool

from flask_pgmig.engine_dsn import engine_params, engine_url, params_to_url, pg8000_params
from flask_pgmig.errors import ConfigError
from flask_pgmig.guard import invoked_command

NOWHERE_HOST = "postgresql+{driver}://app:Engine-pw-1@127.0.0.1:1/appdb"


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2", "pg8000"])
def test_engine_url_without_connecting(driver: str) -> None:
    engine = create_engine(NOWHERE_HOST.format(driver=driver))
    url, notes = engine_url(engine)
    params = conninfo_to_dict(url)
    assert {k: params[k] for k in ("user", "password", "host", "port", "dbname")} == {
        "user": "app", "password": "Engine-pw-1", "host": "127.0.0.1", "port": "1", "dbname": "appdb",
    }  # fmt: skip
    assert notes == []
    pool = engine.pool
    assert isinstance(pool, QueuePool) and pool.checkedout() == 0 and pool.checkedin() == 0  # untouched


def test_connect_args_win_and_unknown_ones_are_reported() -> None:
    engine = create_engine(
        NOWHERE_HOST.format(driver="psycopg2"),
        connect_args={"sslmode": "disable", "options": "-c statement_timeout=5s", "cursor_factory": None,
                      "made_up": 1},
    )  # fmt: skip
    params, notes = engine_params(engine)
    assert params["sslmode"] == "disable" and params["options"] == "-c statement_timeout=5s"
    assert notes == ["the psycopg2 argument 'made_up' is not a libpq connection keyword and is ignored"]


def test_notes_are_logged_once_through_app_logger(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(
        tmp_path,
        sqlalchemy_url=NOWHERE_HOST.format(driver="psycopg"),
        engine_options={"connect_args": {"made_up": 1}},
    )
    state = app.extensions["pgmig"]
    with caplog.at_level(logging.WARNING):
        state.dsn()
        state.dsn()
    messages = [r.getMessage() for r in caplog.records if r.name == app.logger.name]
    assert messages == [
        "flask-pgmig: the psycopg argument 'made_up' is not a libpq connection keyword and is ignored."
    ]


def test_custom_creator_cannot_be_read() -> None:
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect("host=127.0.0.1 port=1"))
    with pytest.raises(ConfigError, match="connects through a custom 'creator' or 'do_connect' hook"):
        engine_url(engine)


def test_pg8000_arguments() -> None:
    params, notes = pg8000_params(
        {"user": "u", "password": "p", "database": "d", "timeout": 2.6, "source_address": ("10.0.0.1", 0),
         "startup_params": {"search_path": "a b", "options": "-c work_mem=64MB"}}
    )  # fmt: skip
    assert params == {
        "user": "u", "password": "p", "dbname": "d", "host": "localhost", "connect_timeout": "3",
        "options": "-c work_mem=64MB -c search_path=a\\ b",
    }  # fmt: skip
    assert notes == ["the pg8000 argument 'source_address' has no libpq equivalent and is ignored"]
    sock, _ = pg8000_params({"unix_sock": "/var/run/postgresql/.s.PGSQL.5433", "host": "ignored"})
    assert (sock["host"], sock["port"]) == ("/var/run/postgresql", "5433")


def test_pg8000_ssl_context() -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    assert pg8000_params({"ssl_context": unverified})[0]["sslmode"] == "require"
    verified, notes = pg8000_params({"ssl_context": ssl.create_default_context()})
    assert verified["sslmode"] == "verify-full"
    if psycopg.pq.version() >= 160000:
        assert verified["sslrootcert"] == "system"
    assert any("cannot be read back from an SSLContext" in note for note in notes)
    assert pg8000_params({"ssl_context": True})[0]["sslmode"] == "verify-full"
    with pytest.raises(
        ConfigError, match=r"The pg8000 'ssl_context' is a str; it must be True or an SSLContext\."
    ):
        pg8000_params({"ssl_context": "yes"})


@pytest.mark.parametrize(
    "params",
    [
        {"user": "a b", "password": "p@ss:w/rd %x", "host": "db.internal", "port": "5432", "dbname": "my db"},
        {"user": "u", "host": "::1", "port": "5432", "dbname": "d"},
        {
            "user": "u",
            "host": "h1,h2",
            "port": "5432,5433",
            "dbname": "d",
            "target_session_attrs": "read-write",
        },
        {"host": "/var/run/postgresql", "dbname": "d", "sslmode": "require"},
    ],
)
def test_params_to_url_round_trips(params: dict[str, str]) -> None:
    assert conninfo_to_dict(params_to_url(params)) == params


def test_invoked_command_reads_the_flask_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """As the real flask CLI: the app is loaded while the command name is resolved, before click records it."""
    seen: list[str | None] = []

    def create_app() -> Flask:
        seen.append(invoked_command())
        return Flask("detect")

    for argv in (["flask", "db", "migrate"], ["flask", "--app", "x", "db", "status"], ["flask", "routes"]):
        monkeypatch.setattr(sys, "argv", argv)
        CliRunner().invoke(FlaskGroup(create_app=create_app), argv[1:])
    assert seen[:3] == ["db", "db", "routes"]
    assert invoked_command() is None  # no click context: a WSGI server importing the app


def test_custom_creator_through_flask_db_is_one_line(tmp_path: Path) -> None:
    def creator() -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect("host=127.0.0.1 port=1 user=app password=Creator-pw-77")

    app = build_app(tmp_path, sqlalchemy_url="postgresql+psycopg://", engine_options={"creator": creator})
    result = app.test_cli_runner().invoke(args=["db", "status"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: The SQLAlchemy engine connects through a custom 'creator'")
    assert "Creator-pw-77" not in result.output and "Traceback" not in result.output
