"""Where ``flask db`` connects: PGMIG_DATABASE_URL, then PGMIG_SECRETS, then the app's engine (any driver), PGMIG_ROLE.

The password tests run on a server this process owns, with a pg_hba.conf line that makes one role log in
with scram-sha-256: the shared server trusts every loopback connection, so only there can a test tell that the
password really travels from the app's engine to the migration connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import AppFactory, with_driver, with_password
from flask import Flask
from helpers import history_versions, query, tables
from psycopg import sql
from sqlalchemy import event

from flask_pgmig.embedded import EmbeddedServer

PW_ROLE = "pgmig_pw_role"
PASSWORD = "Rec0gnisable-pw-7731"  # what the app's engine carries
HBA_LINE = f"host all {PW_ROLE} 127.0.0.1/32 scram-sha-256\n"


def test_connection_order(make_app: AppFactory, make_database: Callable[[], str], monkeypatch: Any) -> None:
    url_db, secret_db, engine_db = make_database(), make_database(), make_database()
    monkeypatch.setenv("PGMIG_TEST_SECRET_DSN", secret_db)
    engine_url = with_driver(engine_db, "psycopg")
    everything = make_app(
        sqlalchemy_url=engine_url, PGMIG_DATABASE_URL=url_db, PGMIG_SECRETS="env:PGMIG_TEST_SECRET_DSN"
    )
    no_url = make_app(sqlalchemy_url=engine_url, PGMIG_SECRETS="env:PGMIG_TEST_SECRET_DSN")
    engine_only = make_app(sqlalchemy_url=engine_url)
    expected = [(everything, url_db, "PGMIG_DATABASE_URL"), (no_url, secret_db, "PGMIG_SECRETS")]
    for app, database, source in [*expected, (engine_only, engine_db, "engine")]:
        assert app.extensions["pgmig"].source == source
        result = app.test_cli_runner().invoke(args=["db", "migrate", "--to", "20260115093000"])
        assert result.exit_code == 0, result.output
        assert history_versions(database) == ["20260115093000"], source
    assert [len(history_versions(db)) for db in (url_db, secret_db, engine_db)] == [1, 1, 1]


@pytest.mark.parametrize("driver", ["", "psycopg2", "psycopg", "pg8000"])
def test_engine_driver_and_connect_args(make_app: AppFactory, database_url: str, driver: str) -> None:
    # The database name is only in connect_args: the migration lands there only if they are read.
    # A plain postgresql:// URL is SQLAlchemy's default driver (psycopg2 before SQLAlchemy 2.1, psycopg after).
    server = database_url.rsplit("/", 1)[0] + "/postgres"
    dbname = database_url.rsplit("/", 1)[1]
    url = with_driver(server, driver) if driver else server
    connect_args = {"database": dbname} if driver == "pg8000" else {"dbname": dbname}
    app = make_app(sqlalchemy_url=url, engine_options={"connect_args": connect_args})
    result = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert result.exit_code == 0, result.output
    assert {"users", "pgmig_history"} <= tables(database_url)
    assert "users" not in tables(server)


def test_pgmig_role_owns_the_objects(make_app: AppFactory, database_url: str) -> None:
    role = f"pgmig_owner_{secrets.token_hex(4)}"
    query(database_url, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)).as_string())
    try:
        dbname = database_url.rsplit("/", 1)[1]
        query(
            database_url,
            f'GRANT CREATE ON SCHEMA public TO "{role}"; GRANT CREATE ON DATABASE "{dbname}" TO "{role}"',
        )
        app = make_app(sqlalchemy_url=with_driver(database_url, "psycopg"), PGMIG_ROLE=role)
        result = app.test_cli_runner().invoke(args=["db", "migrate"])
        assert result.exit_code == 0, result.output
        owners = query(
            database_url,
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "WHERE c.relname IN ('users', 'users_email_idx', 'pgmig_history')",
        )
        assert dict(owners) == {"users": role, "users_email_idx": role, "pgmig_history": role}
    finally:
        query(database_url, f'DROP OWNED BY "{role}"')
        query(database_url.rsplit("/", 1)[0] + "/postgres", f'DROP ROLE "{role}"')


# -- the password really travels -----------------------------------------------------------------------------
@pytest.fixture
def password_db(owned_server: EmbeddedServer, owned_database_url: str) -> Iterator[str]:
    """A database owned by PW_ROLE, which may log in over TCP only with PASSWORD (scram-sha-256)."""
    admin = owned_server.url()
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [PW_ROLE]).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(PW_ROLE)))
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(PW_ROLE), sql.Literal(PASSWORD))
        )
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        if HBA_LINE not in hba.read_text():
            hba.write_text(HBA_LINE + hba.read_text())  # first match wins: before the trust lines
            conn.execute("SELECT pg_reload_conf()")
        dbname = owned_database_url.rsplit("/", 1)[1]
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(PW_ROLE))
        )
    yield with_password(owned_database_url, PASSWORD, user=PW_ROLE)


def test_the_role_needs_its_password(password_db: str) -> None:
    """The check the next test relies on: a wrong password is refused by this server."""
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(with_password(password_db, "wrong-password"), connect_timeout=5).close()
    with psycopg.connect(password_db, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (PW_ROLE,)


@pytest.mark.parametrize("how", ["psycopg2 url", "psycopg connect_args", "pg8000 url", "do_connect token"])
def test_engine_password_is_passed(make_app: AppFactory, password_db: str, how: str) -> None:
    driver = "psycopg" if how == "do_connect token" else how.split()[0]
    without = with_password(password_db, "", user=PW_ROLE).replace(f"{PW_ROLE}:@", f"{PW_ROLE}@")
    options: dict[str, Any] = {}
    if how in ("psycopg2 url", "pg8000 url"):
        url = with_driver(password_db, driver)
    elif how == "psycopg connect_args":
        url, options = with_driver(without, "psycopg"), {"connect_args": {"password": PASSWORD}}
    else:
        url = with_driver(without, "psycopg")
    app = make_app(sqlalchemy_url=url, engine_options=options)
    if how == "do_connect token":  # e.g. an IAM auth token set by the app's own listener
        _add_token_listener(app)
    result = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    owner = query(password_db, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'users'")
    assert owner == [(PW_ROLE,)]
    with app.app_context():
        assert app.extensions["sqlalchemy"].engine.dialect.driver == driver


def _add_token_listener(app: Flask) -> None:
    with app.app_context():
        engine = app.extensions["sqlalchemy"].engine

    @event.listens_for(engine, "do_connect")
    def token(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        cparams["password"] = PASSWORD


def test_wrong_engine_password_fails_without_showing_it(make_app: AppFactory, password_db: str) -> None:
    wrong = "Wr0ng-but-recognisable-9918"
    app = make_app(sqlalchemy_url=with_driver(with_password(password_db, wrong, user=PW_ROLE), "pg8000"))
    result = app.test_cli_runner().invoke(args=["db", "migrate"])
    assert result.exit_code == 1
    assert result.output.startswith(
        "Error: Could not connect to PostgreSQL at 'postgresql://pgmig_pw_role:***@"
    )
    assert (
        "password authentication failed" in result.output
        and "Check the user name and password." in result.output
    )
    assert wrong not in result.output
