"""The Flask extension: ``PgMig(app, db)`` / ``init_app``, configuration, the engine lookup and ``flask db``.

State lives in ``app.extensions["pgmig"]``; every PGMIG_* key is read once, at ``init_app``, with its documented
default (see :data:`flask_pgmig.core.config.KEYS`). The ``flask db`` group imports the engine lazily, when a
command runs, so registering the extension adds almost nothing to app start-up.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .errors import ConfigError

if TYPE_CHECKING:
    from .core.events import Events
    from .core.migrator import Migrator

EXTENSION_KEY = "pgmig"


class PgMig:
    """Migrations for a Flask app: ``PgMig(app, db)`` or ``pgmig = PgMig(); pgmig.init_app(app, db)``.

    :param app: the Flask app, or None to call :meth:`init_app` later (app factories).
    :param db: the Flask-SQLAlchemy extension whose engine is migrated (unless PGMIG_DATABASE_URL is set).
    :param directory: the migrations directory; overrides PGMIG_DIRECTORY.
    :param command: the name of the CLI group, ``db`` by default (``flask db migrate``).
    """

    def __init__(
        self, app: Flask | None = None, db: Any = None, *, directory: str | None = None, command: str = "db"
    ) -> None:
        self.db = db
        self.directory = directory
        self.command = command
        if app is not None:
            self.init_app(app, db)

    def init_app(self, app: Flask, db: Any = None) -> None:
        """Register on an app: read the config once, store the state, add the CLI group."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "A 'PgMig' instance has already been registered on this Flask app. Import and use that instance "
                "instead of creating a second one."
            )
        from .core.config import KEYS

        for key in KEYS:
            app.config.setdefault(key.name, key.default)
        app.extensions[EXTENSION_KEY] = PgMigState(self, app, db if db is not None else self.db)
        app.cli.add_command(_lazy_group(self.command))

    def state(self, app: Flask | None = None) -> PgMigState:
        """The registered state for ``app`` (default: the current app)."""
        app = app or current_app
        try:
            state = app.extensions[EXTENSION_KEY]
        except KeyError:
            raise RuntimeError(
                "PgMig is not registered on this Flask app. Did you forget to call 'init_app'?"
            ) from None
        assert isinstance(state, PgMigState)
        return state

    def migrator(self, app: Flask | None = None, events: Events | None = None) -> Migrator:
        """A Migrator for the app's database and migrations directory."""
        from .core.events import Events

        return self.state(app).migrator(events or Events())


class PgMigState:
    """What ``init_app`` read from the config, and how to build a Migrator from it."""

    def __init__(self, extension: PgMig, app: Flask, db: Any) -> None:
        from .core.config import settings_from_mapping

        self.extension = extension
        self.app = app
        self.db = db
        self.command = f"flask {extension.command}"
        configured = extension.directory or app.config["PGMIG_DIRECTORY"]
        self._directory = Path(app.root_path, os.fspath(configured))
        self.database_url: str | None = app.config["PGMIG_DATABASE_URL"]
        self.bind: str | None = app.config["PGMIG_BIND"]
        self.settings = settings_from_mapping(
            app.config, directory=self._directory, command=self.command, context=app
        )

    def directory(self) -> Path:
        """The migrations directory."""
        return self._directory

    def dsn(self) -> str:
        """The DSN to migrate: PGMIG_DATABASE_URL first, then the app's SQLAlchemy engine (for PGMIG_BIND)."""
        if self.database_url:
            return self.database_url
        if self.db is None:
            raise ConfigError(
                "No database for migrations: pass the Flask-SQLAlchemy 'db' to PgMig(app, db), or set "
                "PGMIG_DATABASE_URL."
            )
        with self.app.app_context():
            engines = self.db.engines
            if self.bind not in engines:
                raise ConfigError(
                    f"PGMIG_BIND is {self.bind!r}, but Flask-SQLAlchemy has no engine for that bind."
                )
            url = engines[self.bind].url
        return str(url.render_as_string(hide_password=False))

    def database_display(self) -> str:
        """The target database with its password redacted."""
        from .core.dsn import redact_url

        try:
            return redact_url(self.dsn())
        except ConfigError:
            return "(not configured)"

    def migrator(self, events: Events) -> Migrator:
        """A Migrator with this app's settings."""
        from .core.migrator import Migrator

        return Migrator(self.dsn(), self.settings, events=events)


def _lazy_group(name: str) -> click.Group:
    """The ``flask db`` group; its commands (and the engine) are imported only when it is used."""

    class LazyGroup(click.Group):
        _loaded: click.Group | None = None

        def _real(self) -> click.Group:
            if self._loaded is None:
                from .cli import register

                self._loaded = register(click.Group(name))
            return self._loaded

        def list_commands(self, ctx: click.Context) -> list[str]:
            return self._real().list_commands(ctx)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            return self._real().get_command(ctx, cmd_name)

        def invoke(self, ctx: click.Context) -> Any:
            from .cli import invoke_translating_errors

            return invoke_translating_errors(lambda: super(LazyGroup, self).invoke(ctx), ctx)

    @with_appcontext
    def callback() -> None:
        from .cli import SOURCE_KEY

        click.get_current_context().meta[SOURCE_KEY] = current_app.extensions[EXTENSION_KEY]

    return LazyGroup(name, callback=callback, help="Database migrations (flask-pgmig).")
