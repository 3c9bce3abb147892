"""The flask-pgmig pytest plugin (registered through the ``pytest11`` entry point; design section 7).

The migrations run once, into a template database named after a hash of the migrations directory; every test
that asks for a database gets ``CREATE DATABASE ... TEMPLATE`` (milliseconds, whatever the number of
migrations), dropped after the test. Fixtures: ``pgmig_database_url``, ``pgmig_settings``,
``pgmig_templates``, ``pgmig_db``, ``pgmig_conn``, ``migrator`` and ``pgmig_app``. See ``docs/testing.rst``.

Loading the plugin costs nothing: it connects to no server unless one of its fixtures is used, or a pgmig
option was given (then the report header names the server and the template). The engine, psycopg and Flask
are imported on first use.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .errors import PgMigError

if TYPE_CHECKING:
    import psycopg
    from flask import Flask

    from .core.migrator import Settings
    from .testing.databases import TemplateDatabases
    from .testing.session import SessionDatabases
    from .testing.tester import MigrationTester

T = TypeVar("T")
_SESSION = pytest.StashKey["SessionDatabases"]()
#: The session's report, and under xdist each worker's: what the terminal summary shows.
_REPORTS = pytest.StashKey[list[dict[str, Any]]]()
URL_ENV = ("PGMIG_TEST_DATABASE_URL", "DATABASE_URL")
#: A migration file name (design section 2), without importing the engine for it.
MIGRATION_FILE = re.compile(r"^(\d{14}|\d{8})_[\w-]+\.(sql|py)$")
MISSING_URL = (
    "Pass --pgmig-database-url=postgresql://USER@HOST/postgres (a role that may CREATE DATABASE), or set "
    "PGMIG_TEST_DATABASE_URL or DATABASE_URL."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--pgmig-database-url`` and ``--pgmig-directory``, and the same as ini keys."""
    group = parser.getgroup("pgmig", "flask-pgmig test databases")
    group.addoption(
        "--pgmig-database-url",
        help="PostgreSQL server for test databases (default: PGMIG_TEST_DATABASE_URL, then DATABASE_URL).",
    )
    group.addoption("--pgmig-directory", help="Migrations directory (default: <rootdir>/migrations).")
    parser.addini("pgmig_database_url", "PostgreSQL server for the pgmig test databases.")
    parser.addini(
        "pgmig_directory", "Migrations directory for the pgmig test databases (relative: to rootdir)."
    )


def _explicit(config: pytest.Config) -> bool:
    """Whether a pgmig option or ini key was given (then the header may probe the server)."""
    options = (config.getoption("pgmig_database_url"), config.getoption("pgmig_directory"))
    return any(options) or bool(config.getini("pgmig_database_url") or config.getini("pgmig_directory"))


def _wants_header(config: pytest.Config) -> bool:
    """A pgmig option was given, or PGMIG_TEST_DATABASE_URL is set and the migrations directory exists.

    DATABASE_URL alone does not count: many shells set it for other reasons.
    """
    if _explicit(config):
        return True
    return bool(os.environ.get(URL_ENV[0])) and _directory(config).is_dir()


def _directory(config: pytest.Config, *, discover: bool = False) -> Path:
    """The option, the ini key, PGMIG_DIRECTORY, else ``<rootdir>/migrations``.

    With ``discover`` (when a fixture needs it, never for the header), a missing ``<rootdir>/migrations``
    gives way to the one ``<rootdir>/<package>/migrations`` (or ``src/<package>/migrations``) that holds
    migration files: where a Flask app keeps them by default.
    """
    option = config.getoption("pgmig_directory")
    if option:
        return Path(config.invocation_params.dir, option)
    ini = config.getini("pgmig_directory")
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    if ini:
        return Path(base, str(ini))
    default = Path(config.rootpath, os.environ.get("PGMIG_DIRECTORY") or "migrations")
    if not discover or default.is_dir() or "PGMIG_DIRECTORY" in os.environ:
        return default
    found = [
        path
        for pattern in ("*/migrations", "src/*/migrations")
        for path in sorted(config.rootpath.glob(pattern))
        if path.is_dir() and any(MIGRATION_FILE.match(name) for name in os.listdir(path))
    ]
    return found[0] if len(found) == 1 else default


def _session(config: pytest.Config) -> SessionDatabases:
    """The session's databases, set up (without connecting) on first use."""
    if _SESSION not in config.stash:
        from .core.config import env_mapping, settings_from_mapping
        from .testing.session import SessionDatabases

        url = config.getoption("pgmig_database_url") or config.getini("pgmig_database_url") or None
        for name in URL_ENV:
            url = url or os.environ.get(name) or None
        directory = _directory(config, discover=True)
        settings = settings_from_mapping(env_mapping(), directory=directory, command="flask db")
        config.stash[_SESSION] = SessionDatabases(url, settings, missing_url_hint=MISSING_URL)
    return config.stash[_SESSION]


def _user_error(call: Callable[[], T]) -> T:
    """Run ``call``; a flask-pgmig error fails the test with its message instead of a traceback."""
    try:
        return call()
    except PgMigError as error:
        pytest.fail(f"flask-pgmig: {error.message}", pytrace=False)


def pytest_report_header(config: pytest.Config) -> str | None:
    """``pgmig: PostgreSQL 15.4 at <url>; template <name> (...)``, when the plugin was configured."""
    if not _wants_header(config):
        return None
    from .core.dsn import redact_url

    try:
        session = _session(config)
        templates = session.templates()
        version = templates.server_version()
        state = templates.template_state()
    except PgMigError as error:
        return f"pgmig: {error.message}"
    return (
        f"pgmig: PostgreSQL {version} at {redact_url(templates.server_url)}; "
        f"template {templates.template_name} ({state}) for '{templates.settings.directory}'"
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop what is left of this session's databases; an xdist worker also sends its report home."""
    config = session.config
    if _SESSION not in config.stash:
        return
    databases = config.stash[_SESSION]
    report = databases.report().to_json()
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["pgmig"] = report
    else:  # the terminal summary comes after this hook
        config.stash.setdefault(_REPORTS, []).append(report)
    try:
        databases.close()
    except Exception as error:  # the server went away, say: the next session drops what is left
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"pgmig: could not drop every test database ({error}); the next run will.")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist (controller): keep each worker's report for the summary."""
    report = getattr(node, "workeroutput", {}).get("pgmig")
    if report is not None:
        node.config.stash.setdefault(_REPORTS, []).append(report)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line per template: built (how long, how many migrations) or reused; and the databases created."""
    if _REPORTS not in config.stash:
        return  # the plugin was not used: import nothing
    from .testing.session import SessionReport

    reports = [SessionReport.from_json(r) for r in config.stash.get(_REPORTS, [])]
    templates = [t for r in reports for t in r.templates]
    if not templates and not any(r.databases for r in reports):
        return
    for name in dict.fromkeys(t.name for t in templates):
        builds = [t for t in templates if t.name == name and t.built]
        how = (
            f"built in {builds[0].build_ms} ms ({builds[0].migrations} migrations)"
            if builds
            else "reused from an earlier run"
        )
        terminalreporter.write_line(f"pgmig: template {name} {how}; builds this run: {len(builds)}")
    terminalreporter.write_line(f"pgmig: test databases created: {sum(r.databases for r in reports)}")


# -- fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pgmig_database_url(pytestconfig: pytest.Config) -> str:
    """URL of the PostgreSQL server the test databases are created on (a role that may CREATE DATABASE)."""
    return _user_error(lambda: _session(pytestconfig).require_url())


@pytest.fixture(scope="session")
def pgmig_settings(pytestconfig: pytest.Config) -> Settings:
    """The engine settings: the migrations directory and the PGMIG_* environment variables."""
    return _user_error(lambda: _session(pytestconfig)).settings


@pytest.fixture(scope="session")
def pgmig_templates(pytestconfig: pytest.Config, pgmig_database_url: str) -> TemplateDatabases:
    """The session's template manager: ``clone()``, ``empty()`` and ``drop(url)`` for tests that need more."""
    return _user_error(lambda: _session(pytestconfig).templates())


@pytest.fixture
def pgmig_db(pytestconfig: pytest.Config, pgmig_templates: TemplateDatabases) -> Iterator[str]:
    """URL of a fresh, fully migrated database, cloned from the template; dropped after the test."""
    session = _user_error(lambda: _session(pytestconfig))
    url = _user_error(lambda: session.clone(pgmig_templates))
    try:
        yield url
    finally:
        pgmig_templates.drop(url)


@pytest.fixture
def pgmig_conn(pgmig_db: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit psycopg connection to ``pgmig_db`` (``with conn.transaction():`` for a transaction)."""
    from .core import dsn

    conn = _user_error(lambda: dsn.connect(pgmig_db, autocommit=True, application_name="pgmig-pytest-test"))
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def migrator(pytestconfig: pytest.Config, pgmig_templates: TemplateDatabases) -> Iterator[MigrationTester]:
    """An empty database and the project's migrations: ``migrate_to(v)``, ``rollback_to(v)``..."""
    from .testing.tester import MigrationTester

    url = _user_error(lambda: _session(pytestconfig).empty(pgmig_templates))
    tester = MigrationTester(url, pgmig_templates.settings)
    try:
        yield tester
    finally:
        tester.close()
        pgmig_templates.drop(url)


@pytest.fixture
def pgmig_app(request: pytest.FixtureRequest, pytestconfig: pytest.Config) -> Iterator[Flask]:
    """Your ``app`` fixture, its Flask-SQLAlchemy engine (and PgMig) pointed at a fresh migrated database.

    The database is ``pgmig_db`` (so ``pgmig_conn`` sees the same data) unless the app's PgMig settings name
    another migrations directory, schema or table: then it is a clone of a template built from those.
    """
    from .testing.flask_glue import app_settings, point_app_at

    try:
        app: Flask = request.getfixturevalue("app")
    except pytest.FixtureLookupError as error:
        if error.argname != "app":
            raise
        pytest.fail(
            "The 'pgmig_app' fixture needs a fixture named 'app' that returns your Flask app (the "
            "pytest-flask convention). Define one in conftest.py.",
            pytrace=False,
        )
    session = _user_error(lambda: _session(pytestconfig))
    explicit_dir = bool(pytestconfig.getoption("pgmig_directory") or pytestconfig.getini("pgmig_directory"))
    settings = session.settings if explicit_dir else app_settings(app, session.settings)
    templates = _user_error(lambda: session.templates(settings))
    if templates is request.getfixturevalue("pgmig_templates"):
        url, own = request.getfixturevalue("pgmig_db"), False
    else:
        url, own = _user_error(lambda: session.clone(templates)), True
    restore = _user_error(lambda: point_app_at(app, url, directory=settings.directory))
    try:
        yield app
    finally:
        restore()
        if own:
            templates.drop(url)
