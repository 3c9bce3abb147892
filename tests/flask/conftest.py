"""Apps for the extension's tests: a real Flask + Flask-SQLAlchemy app on a fresh database per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from helpers import copy_scenario

from flask_pgmig import PgMig

AppFactory = Callable[..., Flask]


def with_driver(url: str, driver: str) -> str:
    """``postgresql://...`` -> ``postgresql+<driver>://...`` (SQLAlchemy's driver selection)."""
    return url.replace("postgresql://", f"postgresql+{driver}://", 1)


def with_password(url: str, password: str, user: str | None = None) -> str:
    """The same URL with ``user:password`` in its userinfo (the shared test server trusts any password)."""
    parts = urlsplit(url)
    user = user or parts.username or "postgres"
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


#: A URL nothing listens on, for tests that must fail (or never connect) without creating a database.
NOWHERE = "postgresql://postgres@127.0.0.1:1/nowhere"


def write_migration(directory: Path, version: str, name: str, up: str, down: str = "") -> Path:
    """Write ``<version>_<name>.sql`` with both sections into ``directory`` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{version}_{name}.sql"
    path.write_text(f"-- migrate:up\n{up}\n\n-- migrate:down\n{down}\n", encoding="utf-8")
    return path


def build_app(
    root: Path,
    *,
    sqlalchemy_url: str | None = None,
    binds: dict[str, Any] | None = None,
    engine_options: dict[str, Any] | None = None,
    extension: PgMig | None = None,
    name: str = "pgmig_test_app",
    **config: Any,
) -> Flask:
    """A Flask app rooted at ``root`` (so ``root/migrations`` is its default directory) with PgMig on it."""
    app = Flask(name, root_path=str(root))
    app.config.update(config)
    db = None
    if sqlalchemy_url is not None:
        app.config["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url
        app.config["SQLALCHEMY_BINDS"] = binds or {}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options or {}
        db = SQLAlchemy(app)
    (extension or PgMig()).init_app(app, db)
    return app


@pytest.fixture
def make_app(tmp_path: Path) -> AppFactory:
    """``make_app(scenario="basic", **config)``: copies the scenario to tmp_path/migrations and builds an app."""

    def factory(scenario: str | None = "basic", **kwargs: Any) -> Flask:
        if scenario is not None and not (tmp_path / "migrations").exists():
            copy_scenario(scenario, tmp_path)
        return build_app(tmp_path, **kwargs)

    return factory


@pytest.fixture
def app(make_app: AppFactory, database_url: str) -> Flask:
    """pytest-flask's app: the 'basic' scenario, the app's engine on psycopg, a readiness endpoint."""
    return make_app(
        sqlalchemy_url=with_driver(database_url, "psycopg"), PGMIG_HEALTH_ENDPOINT="/health/migrations"
    )
