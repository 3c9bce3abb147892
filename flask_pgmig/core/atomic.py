"""``migrate --atomic`` and ``rollback --atomic``: every planned migration in one transaction, all or nothing.

Round trips as psql's ``--single-transaction`` needs them: BEGIN travels with the first statement, each
statement goes alone, and the history rows of all migrations are written (or deleted) by one statement sent
with the COMMIT.
No savepoint per migration: past 64 subtransactions PostgreSQL's per-backend cache overflows and every later
statement slows down. The timeouts are set again only when a file's options change them. A lock timeout
retries the whole transaction, since retrying one migration inside it would sleep while holding the locks
the earlier ones took.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from . import backfill, sql
from .files import MigrationFile, SectionOptions
from .plan import RollbackStep

if TYPE_CHECKING:
    from .runner import Runner

Timeouts = tuple[int | None, int | None]


def apply_atomic(runner: Runner, migrations: Sequence[MigrationFile]) -> list[int]:
    """Apply ``migrations`` in one transaction and record them; return each one's duration in ms."""
    from .runner import preflight

    plans = [(migration, preflight(migration)) for migration in migrations]
    durations: list[int] = []
    first, last = migrations[0].version, migrations[-1].version
    label = first if first == last else f"{first}..{last}"

    if runner.in_transaction:
        raise RuntimeError("--atomic opens its own transaction; it cannot run inside another one")

    def attempt() -> None:
        durations.clear()
        current: Timeouts | None = None
        prefix = "BEGIN; "
        try:
            for migration, statements in plans:
                runner.events.migration_started(migration.version, migration.name, "up")
                started = time.perf_counter()
                prefix, current = _with_timeouts(runner, prefix, current, migration.up.options)
                if migration.kind == "py":
                    if prefix:
                        runner.conn.execute(prefix.encode("utf-8"), prepare=False)
                    runner._run_python(migration, "up")
                else:
                    section = migration.up
                    runner.run_statements(
                        migration.version, migration.path.name, section, statements, prefix=prefix
                    )
                prefix = ""
                durations.append(round((time.perf_counter() - started) * 1000))
                runner.events.migration_finished(migration.version, migration.name, "up", durations[-1])
            write = runner.history.upsert_many_query(migrations, durations)
            runner.commit_with(label, runner.history_write(write, expected=len(migrations)))
        except BaseException:
            runner.rollback_quietly()
            raise

    runner._with_retries(label if first == last else f"{label} (--atomic)", attempt)
    return list(durations)


def revert_atomic(
    runner: Runner, steps: Sequence[RollbackStep], files: Mapping[str, MigrationFile | None]
) -> list[int]:
    """Run the down sections of ``steps`` (newest first) in one transaction and delete their history rows
    with it; return each one's duration in ms. ``files`` gives a step's file, needed for a Python one."""
    if runner.in_transaction:
        raise RuntimeError("rollback --atomic opens its own transaction; it cannot run inside another one")
    statements = {step.version: sql.split_statements(step.down.sql) for step in steps}
    versions = [step.version for step in steps]
    durations: list[int] = []
    first, last = versions[0], versions[-1]
    label = first if first == last else f"{first}..{last}"

    def attempt() -> None:
        durations.clear()
        current: Timeouts | None = None
        prefix = "BEGIN; "
        ran_code = False
        try:
            for step in steps:
                runner.events.migration_started(step.version, step.name, "down")
                if step.from_stored_source:
                    runner.events.notice(
                        f"{step.id}: file is gone, reverting with the down section stored at apply time"
                    )
                started = time.perf_counter()
                prefix, current = _with_timeouts(runner, prefix, current, step.down.options)
                migration = files.get(step.version)
                if migration is not None and migration.kind == "py":
                    if prefix:
                        runner.conn.execute(prefix.encode("utf-8"), prepare=False)
                    runner._run_python(migration, "down")
                    ran_code = True
                else:
                    runner.run_statements(
                        step.version, step.display, step.down, statements[step.version], prefix=prefix
                    )
                prefix = ""
                durations.append(round((time.perf_counter() - started) * 1000))
                runner.events.migration_finished(step.version, step.name, "down", durations[-1])
            # a Python down section may have backfilled, which creates the progress table
            if ran_code or runner._progress_table is None:
                runner._progress_table = backfill.progress_table_exists(runner.conn, runner.history)
            forget = backfill.forget_many_query(runner.history, versions) if runner._progress_table else None
            write = runner.history.delete_many_query(versions)
            runner.commit_with(label, runner.history_write(write, expected=len(versions)), forget)
        except BaseException:
            runner.rollback_quietly()
            raise

    runner._with_retries(label if first == last else f"{label} (--atomic)", attempt)
    return list(durations)


def _with_timeouts(
    runner: Runner, prefix: str, current: Timeouts | None, options: SectionOptions
) -> tuple[str, Timeouts]:
    """``prefix`` extended by a SELECT setting the section's timeouts, when they differ from ``current``."""
    wanted = runner._timeouts(options)
    if wanted != current:
        query = runner.timeouts_query(wanted, local=True, reset_unset=current is not None)
        prefix += "" if query is None else query.as_string(runner.conn) + "; "
    return prefix, wanted


__all__ = ["apply_atomic", "revert_atomic"]
