"""The one exception tree of flask-pgmig.

Every error a user can cause is a :class:`PgMigError`. Its message is a full sentence that names the file (and
line where known) and ends with what to do. Front ends print ``Error: <message>`` and exit with ``exit_code``;
nothing in here prints or exits. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence


class PgMigError(Exception):
    """Base class of every error flask-pgmig raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(PgMigError):
    """A setting, option or connection parameter is missing or invalid."""


class ConnectionFailed(PgMigError):
    """The database could not be reached, or the connection was lost."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class MigrationFileError(PgMigError):
    """A migration file or the migrations directory is invalid (names, duplicates, unreadable)."""

    def __init__(self, message: str, *, paths: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.paths = list(paths)


class MigrationParseError(MigrationFileError):
    """The content of one migration file is invalid (sections, options, SQL syntax)."""

    def __init__(
        self, message: str, *, path: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message, paths=[path])
        self.path = path
        self.line = line
        self.column = column


class HistoryError(PgMigError):
    """The history table disagrees with the migration files."""

    def __init__(self, message: str, *, version: str | None = None) -> None:
        super().__init__(message)
        self.version = version


class ChecksumMismatch(HistoryError):
    """An applied migration's file has changed since it was applied."""


class MissingMigration(HistoryError):
    """An applied migration's file is gone and the operation needs it."""


class OutOfOrder(HistoryError):
    """A pending migration is older than the newest applied one."""

    def __init__(self, message: str, *, version: str, newest_applied: str) -> None:
        super().__init__(message, version=version)
        self.newest_applied = newest_applied


class FailedMigration(HistoryError):
    """A non-transactional migration failed earlier and must be repaired or resumed first."""


class IrreversibleMigration(HistoryError):
    """A rollback reached a migration that has no down section."""


class LockTimeout(PgMigError):
    """Another process held the migration lock for longer than the configured wait."""

    def __init__(self, message: str, *, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder


class PermissionDenied(PgMigError):
    """The migration role lacks a privilege (SQLSTATE 42501) outside a migration's own SQL."""

    def __init__(self, message: str, *, role: str, target: str) -> None:
        super().__init__(message)
        self.role = role
        self.target = target


class MigrationFailed(PgMigError):
    """A migration's SQL failed on the server; ``__cause__`` is the psycopg error."""

    def __init__(
        self,
        message: str,
        *,
        version: str,
        path: str,
        line: int | None = None,
        column: int | None = None,
        sqlstate: str | None = None,
        statement: str | None = None,
    ) -> None:
        super().__init__(message)
        self.version = version
        self.path = path
        self.line = line
        self.column = column
        self.sqlstate = sqlstate
        self.statement = statement


class PendingMigrationsError(PgMigError):
    """The database is behind (or disagrees with) the migration files; raised by the startup guard."""

    def __init__(self, message: str, *, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


__all__ = [
    "ChecksumMismatch",
    "ConfigError",
    "ConnectionFailed",
    "FailedMigration",
    "HistoryError",
    "IrreversibleMigration",
    "LockTimeout",
    "MigrationFailed",
    "MigrationFileError",
    "MigrationParseError",
    "MissingMigration",
    "OutOfOrder",
    "PendingMigrationsError",
    "PermissionDenied",
    "PgMigError",
]
