"""Point an existing Flask app at a per-test database: its Flask-SQLAlchemy engine and its PgMig state.

The engine object is kept (with its pool class, ``connect_args``, echo and event listeners); only where it
connects changes, through SQLAlchemy's documented ``do_connect`` event, and its pool is emptied so that no
connection to the old database is reused. Flask and SQLAlchemy are imported only when this is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.migrator import Settings
from ..errors import ConfigError

if TYPE_CHECKING:
    from flask import Flask


def point_app_at(app: Flask, url: str, *, directory: Path | None = None) -> Callable[[], None]:
    """Make ``app`` use the database at ``url`` and return a function that undoes it.

    Re-points the Flask-SQLAlchemy engine of the migrated bind (PGMIG_BIND when PgMig is registered, else the
    default bind) and makes PgMig migrate ``url``. With ``directory``, refuses an app whose PgMig migrations
    directory is another one (the test database would not match the app's migrations).
    """
    state = app.extensions.get("pgmig")
    db = app.extensions.get("sqlalchemy")
    if state is None and db is None:
        raise ConfigError(
            f"The Flask app {app.name!r} has neither Flask-SQLAlchemy nor PgMig registered, so there is no "
            "engine to point at the test database. Register them in the app factory, or use the 'pgmig_db' "
            "URL directly."
        )
    if state is not None and directory is not None and state.directory().resolve() != directory.resolve():
        raise ConfigError(
            f"The app's migrations directory is '{state.directory()}' but the pgmig pytest plugin built "
            f"the test database from '{directory}'. Pass --pgmig-directory={state.directory()} (or set "
            "pgmig_directory in the pytest configuration)."
        )
    undo: list[Callable[[], None]] = []
    if db is not None:
        bind = getattr(state, "bind", None)
        with app.app_context():
            engines = db.engines
            if bind not in engines:
                raise ConfigError(
                    f"Flask-SQLAlchemy has no engine for bind {bind!r} on app {app.name!r}; add it to "
                    "SQLALCHEMY_BINDS, or fix PGMIG_BIND."
                )
            undo.append(repoint_engine(engines[bind], url))
        undo.append(lambda: _end_session(app, db))
    if state is not None:
        previous = state.database_url
        state.database_url = url
        undo.append(lambda: setattr(state, "database_url", previous))

    def restore() -> None:
        for step in reversed(undo):
            step()

    return restore


def _end_session(app: Flask, db: Any) -> None:
    """End the test's Flask-SQLAlchemy session before its database is dropped.

    pytest-flask pops its request context (which ends the session with a ROLLBACK) only after the per-test
    database is gone; a session still holding a connection would then fail on the dropped connection.
    """
    from flask import current_app, has_app_context

    if has_app_context() and current_app._get_current_object() is app:  # type: ignore[attr-defined]
        db.session.remove()


def app_settings(app: Flask, default: Settings) -> Settings:
    """The engine settings of the app's PgMig (its migrations directory, schema, table), else ``default``."""
    state = app.extensions.get("pgmig")
    settings = getattr(state, "settings", None)
    return settings if isinstance(settings, Settings) else default


def repoint_engine(engine: Any, url: str) -> Callable[[], None]:
    """Make an SQLAlchemy engine connect to ``url`` (same driver and options); return the undo function."""
    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    if engine.dialect.name != "postgresql":
        raise ConfigError(
            f"The app's engine is {engine.dialect.name!r}; the pgmig test database is PostgreSQL. Point the "
            "app's SQLALCHEMY_DATABASE_URI at PostgreSQL (any value: the plugin re-points it per test)."
        )
    old_url = engine.url
    target = make_url(url)
    new_url = old_url.set(
        username=target.username,
        password=target.password,
        host=target.host,
        port=target.port,
        database=target.database,
    ).update_query_dict(dict(target.query))
    old_cargs, old_cparams = engine.dialect.create_connect_args(old_url)
    new_cargs, new_cparams = engine.dialect.create_connect_args(new_url)

    def connect_to_test_database(
        dialect: Any, record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> None:
        # Only what the URL contributed is replaced: connect_args and other listeners' additions stay.
        for key in old_cparams:
            cparams.pop(key, None)
        cparams.update(new_cparams)
        if list(cargs) == list(old_cargs):
            cargs[:] = list(new_cargs)

    event.listen(engine, "do_connect", connect_to_test_database)
    engine.dispose()
    engine.url = new_url  # what the app (and its logs) show, and what render_as_string gives

    def restore() -> None:
        event.remove(engine, "do_connect", connect_to_test_database)
        engine.dispose()
        engine.url = old_url

    return restore


__all__ = ["app_settings", "point_app_at", "repoint_engine"]
