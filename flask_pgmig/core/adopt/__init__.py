"""Adoption: read another tool's migrations (and its tracking table) so a project can switch in minutes.

One module per source format turns a directory into a :class:`~.model.SourceSet`; :mod:`.convert` writes our
files; :mod:`.history` records what the source tool had applied. Standard library, psycopg and pglast only:
Alembic runs in a child process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...errors import ConfigError
from . import alembic, dbmate, diesel, flyway, golang_migrate, goose
from .model import SourceSet

READERS: dict[str, Callable[[Path], SourceSet]] = {
    "dbmate": dbmate.read,
    "golang-migrate": golang_migrate.read,
    "sqlx": lambda root: golang_migrate.read(root, "sqlx"),
    "goose": goose.read,
    "flyway": flyway.read,
    "diesel": diesel.read,
    "alembic": alembic.read,
}
FORMATS = tuple(READERS)
ALIASES = {"migrate": "golang-migrate", "flask-migrate": "alembic"}


def read_source(tool: str, root: Path) -> SourceSet:
    """Read ``root`` in the format of ``tool`` (one of :data:`FORMATS`, or an alias)."""
    name = ALIASES.get(tool.lower(), tool.lower())
    if name not in READERS:
        raise ConfigError(
            f"'{tool}' is not a format 'import' knows. Use one of: {', '.join(FORMATS)} ('flask-migrate' is "
            "'alembic')."
        )
    return READERS[name](root)


__all__ = ["ALIASES", "FORMATS", "READERS", "read_source"]
