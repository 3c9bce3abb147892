"""``migrate --dry-run --execute``: prove the pending migrations against the real database, then undo them.

The transactional migrations run, in order and exactly as ``migrate`` runs them (history rows included),
inside one outer transaction that is always rolled back: the database is left as it was, history table
included. A ``transaction:false`` migration cannot be undone that way, so it is not executed and is listed
with the reason.
The outer transaction keeps every lock it takes until the rollback, like ``--atomic`` would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..errors import PgMigError
from .files import MigrationFile
from .history import HistoryTable
from .runner import Runner

Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class Executed:
    """A migration that ran inside the dry-run transaction (and was rolled back with it)."""

    id: str
    duration_ms: int


@dataclass
class DryRunExecution:
    """What ``--dry-run --execute`` proved: executed, the first failure (if any), and what it did not run."""

    executed: list[Executed] = field(default_factory=list)
    failed: tuple[str, str] | None = None  # (migration id, error message)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (migration id, why it was not executed)
    order: list[str] = field(default_factory=list)  # every migration id of the plan, in plan order

    @property
    def ok(self) -> bool:
        """True when every executed migration succeeded."""
        return self.failed is None


NOT_UNDOABLE = "not executed: it is transaction:false, and what it does cannot be rolled back"


class _Undo(Exception):
    """Raised at the end of the outer transaction to roll it back, whatever happened inside."""


def execute(
    conn: Connection, runner: Runner, history: HistoryTable, planned: Sequence[MigrationFile]
) -> DryRunExecution:
    """Run ``planned`` on ``conn`` (autocommit) inside one transaction that is rolled back at the end."""
    result = DryRunExecution()
    try:
        with conn.transaction():
            history.ensure(conn)  # created inside the transaction, so it goes away with it
            _run(runner, planned, result)
            raise _Undo
    except _Undo:
        pass
    return result


def _run(runner: Runner, planned: Sequence[MigrationFile], result: DryRunExecution) -> None:
    not_run: list[str] = []
    result.order = [migration.id for migration in planned]
    for index, migration in enumerate(planned):
        if not migration.transactional:
            result.skipped.append((migration.id, NOT_UNDOABLE))
            not_run.append(migration.id)
            continue
        started = time.perf_counter()
        try:
            runner.apply(migration)
        except PgMigError as error:
            after = (
                f" (it comes after {', '.join(repr(i) for i in not_run)}, not executed)" if not_run else ""
            )
            result.failed = (migration.id, error.message + after)
            result.skipped += [(m.id, f"not executed: '{migration.id}' failed before it")
                               for m in planned[index + 1 :]]  # fmt: skip
            return
        result.executed.append(Executed(migration.id, round((time.perf_counter() - started) * 1000)))


__all__ = ["DryRunExecution", "Executed", "execute"]
