"""The Flask extension: ``PgMig(app, db)`` / ``init_app``, configuration, where the DSN comes from, ``flask db``.

State lives in ``app.extensions["pgmig"]``; every PGMIG_* key is read once, at ``init_app``, with its documented
default (see :data:`flask_pgmig.core.config.KEYS`). The ``flask db`` group imports the CLI lazily, when a command
runs, so registering the extension adds almost nothing to app start-up (the startup guard, when on, adds one
directory scan and one query).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .core.config import KEYS, parse_choice, settings_from_mapping
from .core.dsn import redact_url, resolve_secret
from .errors import ConfigError, PgMigError

if TYPE_CHECKING:
    from .core.events import Events
    from .core.fleet import Target
    from .core.migrator import Migrator
    from .health import MigrationCheck

EXTENSION_KEY = "pgmig"
MODES = ("off", "warn", "error")
_FROM_CONFIG: Any = object()


class PgMig:
    """Migrations for a Flask app: ``PgMig(app, db)`` or ``pgmig = PgMig(); pgmig.init_app(app, db)``.

    :param app: the Flask app, or None to call :meth:`init_app` later (app factories).
    :param db: the Flask-SQLAlchemy extension (or an SQLAlchemy engine) whose database is migrated, unless
        PGMIG_DATABASE_URL or PGMIG_SECRETS is set.
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
        """Register on an app: read the config once, add ``flask <command>``, the health endpoint, the guard."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"A 'PgMig' instance has already been registered on the Flask app {app.name!r}. Call "
                "'init_app' once per app, and import that instance where you need it instead of creating another."
            )
        for key in KEYS:
            app.config.setdefault(key.name, key.default)
        state = PgMigState(self, app, db if db is not None else self.db)
        app.extensions[EXTENSION_KEY] = state
        app.cli.add_command(_lazy_group(self.command))
        if state.health_endpoint:
            from .health import blueprint

            app.register_blueprint(blueprint(state.health_endpoint))
        if state.guard != "off":
            from .guard import run_guard

            run_guard(state)

    def state(self, app: Flask | None = None) -> PgMigState:
        """The registered state for ``app`` (default: the current app)."""
        if app is None:
            if not current_app:
                raise RuntimeError(
                    "No Flask app is active: pass the app, e.g. 'pgmig.state(app)', or work inside "
                    "'with app.app_context():'."
                )
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        state = app.extensions.get(EXTENSION_KEY)
        if not isinstance(state, PgMigState):
            raise RuntimeError(
                f"PgMig is not registered on the Flask app {app.name!r}. Did you forget to call "
                "'pgmig.init_app(app)'?"
            )
        return state

    def migrator(self, app: Flask | None = None, events: Events | None = None) -> Migrator:
        """A Migrator for the app's database and migrations directory."""
        from .core.events import Events

        return self.state(app).migrator(events or Events())

    def check(self, app: Flask | None = None) -> MigrationCheck:
        """Whether the database is up to date with the migrations, for readiness probes (never raises)."""
        from .health import check

        return check(self.state(app))


class PgMigState:
    """What ``init_app`` read from the config, and how to reach the database and build a Migrator.

    One state migrates one database: ``for_bind`` makes the state of another Flask-SQLAlchemy bind.
    """

    def __init__(
        self,
        extension: PgMig,
        app: Flask,
        db: Any,
        *,
        bind: str | None = _FROM_CONFIG,
        directory: str | os.PathLike[str] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.extension = extension
        self.app = app
        self.db = db
        if config is None:
            config = {k.name: app.config.get(k.name, k.default) for k in KEYS}
            if extension.directory:  # PgMig(directory=...) wins over PGMIG_DIRECTORY for the main database
                config["PGMIG_DIRECTORY"] = extension.directory
        self.config: dict[str, Any] = dict(config)
        self.command = f"flask {extension.command}"
        self.bind: str | None = self.config["PGMIG_BIND"] if bind is _FROM_CONFIG else bind
        configured = directory or self.config["PGMIG_DIRECTORY"]
        self._directory = Path(app.root_path, os.fspath(configured))
        self.database_url: str | None = self.config["PGMIG_DATABASE_URL"] or None
        self.secrets: str | None = self.config["PGMIG_SECRETS"] or None
        self.guard = _mode(self.config["PGMIG_GUARD"], "PGMIG_GUARD")
        self.lint = _mode(self.config["PGMIG_LINT"], "PGMIG_LINT")
        self.health_endpoint: str | None = self.config["PGMIG_HEALTH_ENDPOINT"] or None
        if self.health_endpoint is not None and not str(self.health_endpoint).startswith("/"):
            raise ConfigError(f"PGMIG_HEALTH_ENDPOINT is {self.health_endpoint!r}; it must start with '/'.")
        from .binds import configured_binds

        configured_binds(self.config)  # a malformed PGMIG_BINDS fails init_app, not the first --all-binds
        self.settings = settings_from_mapping(
            self.config, directory=self._directory, command=self.command, context=app
        )
        self._secret_dsn: str | None = None
        self._notes_logged: set[str] = set()
        self._binds: dict[str | None, PgMigState] = {}

    def for_bind(self, bind: str | None, directory: str | os.PathLike[str] | None = None) -> PgMigState:
        """The state of another Flask-SQLAlchemy bind: its engine and its PGMIG_BINDS entry (see :mod:`.binds`).

        The main bind (PGMIG_BIND) is this state itself. ``directory``, if given, overrides the bind's.
        """
        if bind == self.bind:
            return self.with_directory(directory) if directory else self
        if directory is None and bind in self._binds:
            return self._binds[bind]  # kept, so that a bind's secret is read once, as the main one
        from .binds import bind_config

        if bind is None:  # the default engine, while PGMIG_BIND names another: the main DSN is not its own
            config = dict(self.config, PGMIG_DATABASE_URL=None, PGMIG_SECRETS=None)
        else:
            config = bind_config(self.config, bind)
        if directory:
            config["PGMIG_DIRECTORY"] = directory
        state = PgMigState(self.extension, self.app, self.db, bind=bind, config=config)
        if directory is None:
            self._binds[bind] = state
        return state

    def with_directory(self, directory: str | os.PathLike[str]) -> PgMigState:
        """The same database and settings with another migrations directory (e.g. the tenant one)."""
        state = PgMigState(
            self.extension, self.app, self.db, bind=self.bind, directory=directory, config=self.config
        )
        state._secret_dsn = self._secret_dsn
        return state

    def fleet_targets(
        self, *, targets_file: str | None, all_schemas: bool, all_binds: bool, bind: str | None
    ) -> list[Target]:
        """Targets of ``--all-binds``, ``--all-schemas`` or ``--targets FILE`` (see :func:`.binds.fleet_targets`)."""
        from .binds import fleet_targets

        return fleet_targets(
            self, targets_file=targets_file, all_schemas=all_schemas, all_binds=all_binds, bind=bind
        )

    def directory(self) -> Path:
        """The migrations directory."""
        return self._directory

    @property
    def source(self) -> str:
        """Where the DSN comes from: ``PGMIG_DATABASE_URL``, ``PGMIG_SECRETS`` or ``engine``."""
        return "PGMIG_DATABASE_URL" if self.database_url else "PGMIG_SECRETS" if self.secrets else "engine"

    def dsn(self) -> str:
        """The DSN to migrate: PGMIG_DATABASE_URL, else PGMIG_SECRETS, else the app's engine for PGMIG_BIND.

        A secret is resolved once and kept; :meth:`refresh` forgets it (e.g. after the password rotated).
        """
        if self.database_url:
            return str(self.database_url)
        if self.secrets:
            if self._secret_dsn is None:
                self._secret_dsn = resolve_secret(str(self.secrets))
            return self._secret_dsn
        from .engine_dsn import engine_url

        url, notes = engine_url(self.engine())
        for note in notes:
            if note not in self._notes_logged:  # once per state, not on every health check
                self._notes_logged.add(note)
                self.app.logger.warning("flask-pgmig: %s.", note)
        return url

    def refresh(self) -> None:
        """Forget the DSN resolved from PGMIG_SECRETS, so the next use reads the secret again."""
        self._secret_dsn = None

    def engine(self) -> Any:
        """The SQLAlchemy engine of PGMIG_BIND (``db`` itself when PgMig was given an engine)."""
        if self.db is None:
            raise ConfigError(
                "No database for migrations: pass the Flask-SQLAlchemy 'db' to PgMig(app, db), or set "
                "PGMIG_DATABASE_URL or PGMIG_SECRETS."
            )
        if hasattr(self.db, "dialect") and hasattr(self.db, "pool"):
            engine = self.db
        else:
            with self.app.app_context():
                try:
                    engines = dict(self.db.engines)
                except (RuntimeError, KeyError, AttributeError):
                    raise ConfigError(
                        f"The 'db' given to PgMig is not set up on the Flask app {self.app.name!r}. Call "
                        "'db.init_app(app)' before 'pgmig.init_app(app, db)'."
                    ) from None
            if self.bind not in engines:
                known = ", ".join(repr(key) for key in engines)
                raise ConfigError(
                    f"PGMIG_BIND is {self.bind!r}, but Flask-SQLAlchemy has no engine for that bind (it has "
                    f"{known}). Add it to SQLALCHEMY_BINDS, or fix PGMIG_BIND."
                )
            engine = engines[self.bind]
        if engine.dialect.name != "postgresql":
            raise ConfigError(
                f"The engine of bind {self.bind!r} is {engine.dialect.name!r}, and flask-pgmig migrates PostgreSQL "
                "only. Point that bind at PostgreSQL, or set PGMIG_DATABASE_URL."
            )
        return engine

    def database_display(self) -> str:
        """The target database with its password redacted."""
        try:
            return redact_url(self.dsn())
        except PgMigError:
            return "(not configured)"

    def migrator(self, events: Events) -> Migrator:
        """A Migrator with this app's settings."""
        from .core.migrator import Migrator

        return Migrator(self.dsn(), self.settings, events=events)

    def __repr__(self) -> str:
        # Never the DSN: a repr ends up in logs and tracebacks, and resolving a secret here would be a surprise.
        return (
            f"<PgMigState app={self.app.name!r} bind={self.bind!r} source={self.source!r} "
            f"directory={str(self._directory)!r}>"
        )


def _mode(value: Any, key: str) -> str:
    if value is None or value is False:
        return "off"
    return parse_choice(value, key, MODES)


def _one_line(command: click.Command) -> str:
    """A command's short help, else the first sentence of its help text."""
    if command.short_help:
        return " ".join(command.short_help.split())
    paragraph = " ".join((command.help or "").strip().split("\n\n")[0].split())
    sentence, dot, _ = paragraph.partition(". ")
    return sentence + dot.strip()


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

        def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
            # Each command's first sentence in full (wrapped), where click would cut it at the terminal width.
            rows = [
                (name, _one_line(command))
                for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None and not command.hidden
            ]
            if rows:
                with formatter.section("Commands"):
                    formatter.write_dl(rows)

        def invoke(self, ctx: click.Context) -> Any:
            from .cli import invoke_translating_errors

            return invoke_translating_errors(lambda: super(LazyGroup, self).invoke(ctx), ctx)

    @with_appcontext
    def callback() -> None:
        from .cli import SOURCE_KEY

        click.get_current_context().meta[SOURCE_KEY] = current_app.extensions[EXTENSION_KEY]

    return LazyGroup(name, callback=callback, help="Database migrations (flask-pgmig).")
