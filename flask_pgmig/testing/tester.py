"""MigrationTester: step one database through the migrations to test a migration itself.

A test inserts data at version A, migrates to B and asserts the data was transformed; or rolls back and
asserts the down section restored it. Everything goes through the
:class:`~flask_pgmig.core.migrator.Migrator`, so the history table, transaction modes and timeouts are exactly
those of production.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from ..core import dsn as dsn_module
from ..core.events import Events
from ..core.files import MigrationFile, version_key
from ..core.migrator import Migrator, RunResult, Settings
from ..core.plan import APPLIED, MISSING, MODIFIED
from ..errors import ConfigError

Connection = psycopg.Connection[Any]


class MigrationTester:
    """One database and the project's migrations: ``migrate_to``, ``rollback_to``, ``connection``.

    :param url: the database to migrate (usually empty, from the ``migrator`` fixture).
    :param settings: the engine settings; ``settings.directory`` is the migrations directory.
    """

    def __init__(self, url: str, settings: Settings, *, events: Events | None = None) -> None:
        self.url = url
        self.migrator = Migrator(url, settings, events=events)
        self._conn: Connection | None = None

    @property
    def connection(self) -> Connection:
        """An autocommit psycopg connection to the database, opened on first use and closed by :meth:`close`.

        Autocommit matters: an open transaction holding a lock would make the next migration wait for its
        lock_timeout.
        """
        if self._conn is None or self._conn.closed:
            self._conn = dsn_module.connect(self.url, autocommit=True, application_name="pgmig-pytest-test")
        return self._conn

    def execute(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement on :attr:`connection` and return its rows (``[]`` when it returns none)."""
        cur = self.connection.execute(query.encode(), params)
        return cur.fetchall() if cur.description else []

    # -- where the database is -------------------------------------------------------------------------------
    def files(self) -> list[MigrationFile]:
        """Every migration file, in version order."""
        return self.migrator.files()

    def versions(self) -> list[str]:
        """Every migration version, in order."""
        return [f.version for f in self.files()]

    def applied(self) -> list[str]:
        """The versions applied to the database, in order."""
        states = self.migrator.status().having(APPLIED, MODIFIED, MISSING)
        return [m.version for m in states]

    @property
    def current(self) -> str | None:
        """The newest applied version, or None on a database that has nothing applied."""
        applied = self.applied()
        return applied[-1] if applied else None

    # -- moving ----------------------------------------------------------------------------------------------
    def migrate(self) -> RunResult:
        """Apply every pending migration."""
        return self.migrator.migrate()

    def migrate_to(self, version: str) -> RunResult:
        """Apply pending migrations up to and including ``version``.

        Raises :class:`~flask_pgmig.errors.ConfigError` if the database is already past ``version`` (use
        :meth:`rollback_to`) or no migration has that version.
        """
        current = self.current
        if current is not None and version_key(current) > version_key(_checked(version)):
            raise ConfigError(
                f"The test database is already at '{current}', past '{version}', so migrate_to cannot reach "
                f"it. Call rollback_to('{version}') instead."
            )
        return self.migrator.migrate(to=version)

    def rollback_to(self, version: str) -> RunResult:
        """Revert every applied migration after ``version``, newest first (``version`` itself stays applied).

        Raises :class:`~flask_pgmig.errors.ConfigError` if ``version`` is not applied yet (use
        :meth:`migrate_to`).
        """
        current = self.current
        if current is None or version_key(current) < version_key(_checked(version)):
            raise ConfigError(
                f"The test database is at '{current or 'nothing applied'}', before '{version}', so "
                f"rollback_to cannot reach it. Call migrate_to('{version}') instead."
            )
        return self.migrator.rollback(to=version, steps=None)

    def rollback_all(self) -> RunResult:
        """Revert every applied migration, newest first."""
        return self.migrator.rollback(everything=True, steps=None)

    def close(self) -> None:
        """Close :attr:`connection` if it was opened."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _checked(version: str) -> str:
    if not version.isdigit() or len(version) not in (8, 14):
        raise ConfigError(
            f"'{version}' is not a migration version. Give 14 digits (YYYYMMDDHHMMSS) or 8 digits."
        )
    return version


__all__ = ["MigrationTester"]
