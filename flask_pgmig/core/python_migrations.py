"""Python migrations: load the module from its file, call ``up``/``down``, and say where it failed.

A migration file is imported under a private module name (never from ``sys.path``), and a failure in it is a
user error: one sentence naming the file and the line in it, never a traceback.
"""

from __future__ import annotations

import importlib.util
import inspect
import traceback
from types import ModuleType
from typing import Any

import psycopg

from ..errors import MigrationFailed, MigrationParseError
from .failures import first_line
from .files import MigrationFile


def load(migration: MigrationFile) -> ModuleType:
    """Import a Python migration from its path under a private module name."""
    spec = importlib.util.spec_from_file_location(f"pgmig_migration_{migration.version}", migration.path)
    if spec is None or spec.loader is None:
        raise MigrationParseError(
            f"Cannot load Python migration '{migration.path.name}'.", path=str(migration.path)
        )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def call(conn: psycopg.Connection[Any], migration: MigrationFile, direction: str, context: Any) -> None:
    """Run ``up(conn)`` or ``down(conn)``; a function with a second parameter also gets ``context`` (the app)."""
    function = getattr(load(migration), direction)
    if len(inspect.signature(function).parameters) >= 2:
        function(conn, context)
    else:
        function(conn)


def failure(
    exc: BaseException, migration: MigrationFile, direction: str, advice: str | None
) -> MigrationFailed:
    """The error for an exception escaping ``up``/``down``: the file, the line in it, and what to do."""
    line = line_of(exc, migration)
    where = f" at line {line} of '{migration.path.name}'" if line else ""
    if isinstance(exc, psycopg.Error):
        fix = advice or f"fix '{migration.path.name}' and run again."
        return MigrationFailed(
            f"Python migration '{migration.id}' failed in {direction}(){where} (SQLSTATE {exc.sqlstate}): "
            f"{first_line(exc)}. {fix[:1].upper() + fix[1:]}",
            version=migration.version, path=str(migration.path), line=line, sqlstate=exc.sqlstate,
        )  # fmt: skip
    return MigrationFailed(
        f"Python migration '{migration.id}' raised {type(exc).__name__} in {direction}(){where}: "
        f"{first_line(exc)}. Fix '{migration.path.name}' and run again.",
        version=migration.version, path=str(migration.path), line=line,
    )  # fmt: skip


def line_of(exc: BaseException, migration: MigrationFile) -> int | None:
    """The line of the migration file where ``exc`` was raised (the innermost frame in that file)."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == str(migration.path):
            found = frame.lineno
    return found


__all__ = ["call", "failure", "line_of", "load"]
