"""flask-pgmig: production-safe, SQL-first schema migrations for PostgreSQL, built into Flask.

Re-exports only. :class:`PgMig`, :class:`Migrator` and :func:`backfill` load lazily so that the standalone
``pgmig`` command and the engine never import Flask or SQLAlchemy (and ``import flask_pgmig`` stays cheap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    ChecksumMismatch,
    ConfigError,
    ConnectionFailed,
    FailedMigration,
    HistoryError,
    IrreversibleMigration,
    LockTimeout,
    MigrationFailed,
    MigrationFileError,
    MigrationParseError,
    MissingMigration,
    OutOfOrder,
    PendingMigrationsError,
    PermissionDenied,
    PgMigError,
)

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .core.backfill import backfill
    from .core.migrator import Migrator
    from .extension import PgMig

_LAZY = {"PgMig": ".extension", "Migrator": ".core.migrator", "backfill": ".core.backfill"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'flask_pgmig' has no attribute {name!r}")


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
    "Migrator",
    "MissingMigration",
    "OutOfOrder",
    "PendingMigrationsError",
    "PermissionDenied",
    "PgMig",
    "PgMigError",
    "__version__",
    "backfill",
]
