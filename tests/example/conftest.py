"""Fixtures for the example app's tests: the flask-pgmig pytest plugin and pytest-flask, as an app would use them.

The plugin's ``pgmig_db`` (a fresh clone of a template database with every migration of
``example_app/migrations`` applied), ``pgmig_conn`` and ``migrator`` fixtures do the work. An app's own
``conftest.py`` would only define ``app``; inside this repository's suite the plugin is additionally told which
server (the suite's ``pg_server_url``) and which migrations directory to use, by overriding its three session
fixtures here instead of with command-line options, so that the rest of the suite is not affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

import example_app
from flask_pgmig.core.config import settings_from_mapping
from flask_pgmig.core.migrator import Settings
from flask_pgmig.testing.databases import TemplateDatabases

MIGRATIONS = Path(example_app.__file__).resolve().parent / "migrations"


@pytest.fixture(scope="session")
def pgmig_database_url(pg_server_url: str) -> str:
    """The suite's PostgreSQL server (what --pgmig-database-url would give)."""
    return pg_server_url


@pytest.fixture(scope="session")
def pgmig_settings() -> Settings:
    """The example app's migrations (what --pgmig-directory=example_app/migrations would give)."""
    return settings_from_mapping({}, directory=MIGRATIONS, command="flask db")


@pytest.fixture(scope="session")
def pgmig_templates(pgmig_database_url: str, pgmig_settings: Settings) -> Iterator[TemplateDatabases]:
    """The plugin's template manager for the example app's migrations on the suite's server."""
    templates = TemplateDatabases(pgmig_database_url, pgmig_settings)
    try:
        yield templates
    finally:
        templates.close()


@pytest.fixture
def app(pgmig_db: str, tmp_path: Path) -> Flask:
    """The app (pytest-flask's ``app`` fixture), on a fresh migrated database.

    It is created with the app's real configuration, PGMIG_GUARD = "error" included: the guard checks the
    cloned database at creation, as it would in production.
    """
    return example_app.create_app(
        {"SQLALCHEMY_DATABASE_URI": example_app.sqlalchemy_url(pgmig_db), "TESTING": True},
        instance_path=str(tmp_path / "instance"),
    )
