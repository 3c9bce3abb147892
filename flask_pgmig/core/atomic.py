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

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql as pgsql

from . import backfill, pipeline, sql
from .files import MigrationFile, Section, SectionOptions
from .plan import RollbackStep

if TYPE_CHECKING:
    from .runner import Runner

Timeouts = tuple[int | None, int | None]
# Given each migration's duration: the history write to send with the COMMIT, and what goes with it. Given None,
# the durations a write records are left to its $1, bound once they are known: the pipeline composes the write
# while the server still runs the migrations.
Finish = Callable[[list[int] | None], tuple[pgsql.Composed, pgsql.Composed | None]]


@dataclass(frozen=True)
class _Part:
    """One migration's section inside the transaction: ``run`` gets what must be sent ahead of its first
    statement (BEGIN and timeouts; empty when nothing is pending). ``sql``: its file name, section and
    statements when it is plain SQL that the pipeline can send (not Python, no notice to give first)."""

    version: str
    name: str
    options: SectionOptions
    run: Callable[[str], None]
    sql: tuple[str, Section, Sequence[sql.Statement]] | None = None


def apply_atomic(runner: Runner, migrations: Sequence[MigrationFile]) -> list[int]:
    """Apply ``migrations`` in one transaction and record them; return each one's duration in ms."""
    from .runner import preflight

    parts = [
        _Part(m.version, m.name, m.up.options, _python(runner, m, "up"))
        if m.kind == "py"
        else _sql_part(runner, m.version, m.name, m.path.name, m.up, preflight(m))
        for m in migrations
    ]

    def finish(durations: list[int] | None) -> tuple[pgsql.Composed, pgsql.Composed | None]:
        write = runner.history.upsert_many_query(migrations, durations)
        return runner.history_write(write, expected=len(migrations)), None

    return _one_transaction(runner, "up", parts, finish)


def revert_atomic(
    runner: Runner, steps: Sequence[RollbackStep], files: Mapping[str, MigrationFile | None]
) -> list[int]:
    """Run the down sections of ``steps`` (newest first) in one transaction and delete their history rows
    with it; return each one's duration in ms. ``files`` gives a step's file, needed for a Python one."""
    from .runner import preflight_down

    versions = [step.version for step in steps]
    python = {v: m for v in versions for m in [files.get(v)] if m is not None and m.kind == "py"}
    parts = []
    for step in steps:
        if step.version in python:
            part = _Part(step.version, step.name, step.down.options, _python(runner, python[step.version], "down"))
        else:
            statements = preflight_down(step, None)  # checked before the run began: split once
            part = _sql_part(runner, step.version, step.name, step.display, step.down, statements)
        if step.from_stored_source:
            gone = f"{step.id}: file is gone, reverting with the down section stored at apply time"
            part = _Part(part.version, part.name, part.options, _noting(runner, gone, part.run))
        parts.append(part)

    def finish(durations: list[int] | None) -> tuple[pgsql.Composed, pgsql.Composed | None]:
        # a Python down section may have backfilled, which creates the progress table
        exists = runner.has_progress_table(again=bool(python))
        forget = backfill.forget_many_query(runner.history, versions) if exists else None
        write = runner.history.delete_many_query(versions)
        return runner.history_write(write, expected=len(versions)), forget

    return _one_transaction(runner, "down", parts, finish)


def _one_transaction(
    runner: Runner,
    direction: str,
    parts: Sequence[_Part],
    finish: Finish,
) -> list[int]:
    """Run ``parts`` in one transaction, then send ``finish``'s history write (and what goes with it) with the
    COMMIT; a lock timeout retries the whole of it. Returns each part's duration in ms."""
    if runner.in_transaction:
        raise RuntimeError("--atomic opens its own transaction; it cannot run inside another one")
    durations: list[int] = []
    pipelined = all(part.sql is not None for part in parts) and pipeline.supported(runner.conn)
    if pipelined:
        runner.ready_for_pipeline(down=direction == "down")
    attempt = _pipelined if pipelined else _one_by_one
    runner._with_retries(
        _label(parts) if len(parts) == 1 else f"{_label(parts)} (--atomic)",
        functools.partial(attempt, runner, direction, parts, finish, durations),
    )
    return list(durations)


def _one_by_one(
    runner: Runner,
    direction: str,
    parts: Sequence[_Part],
    finish: Finish,
    durations: list[int],
) -> None:
    """One attempt waiting for each statement (a Python migration, or no pipeline mode)."""
    durations.clear()
    current: Timeouts | None = None
    prefix = "BEGIN; "
    try:
        for part in parts:
            runner.events.migration_started(part.version, part.name, direction)
            started = time.perf_counter()
            query, current = _timeouts_change(runner, current, part.options)
            prefix += "" if query is None else query.as_string(runner.conn) + "; "
            part.run(prefix)
            prefix = ""
            durations.append(round((time.perf_counter() - started) * 1000))
            runner.events.migration_finished(part.version, part.name, direction, durations[-1])
        write, also = finish(durations)
        runner.commit_with(_label(parts), write, also)
    except BaseException:
        runner.rollback_quietly()
        raise


def _pipelined(
    runner: Runner,
    direction: str,
    parts: Sequence[_Part],
    finish: Finish,
    durations: list[int],
) -> None:
    """One attempt through the pipeline: every statement sent without waiting, then the history write and
    COMMIT. The write is composed while the server still runs the migrations; their durations are bound to it
    (as $1) when the last one is done."""
    durations.clear()
    units: list[pipeline.Unit] = []
    current: Timeouts | None = None
    for part in parts:
        assert part.sql is not None
        display, section, statements = part.sql
        opening = [b"BEGIN"] if not units else []
        query, current = _timeouts_change(runner, current, part.options)
        opening += [] if query is None else [query.as_bytes(runner.conn)]
        units.append(pipeline.Unit(part.version, part.name, display, section, statements, tuple(opening)))

    def final() -> list[pipeline.Closing]:
        write, also = finish(None)
        closing = [pipeline.Closing(write.as_bytes(runner.conn), durations=direction == "up")]
        return closing + ([] if also is None else [pipeline.Closing(also.as_bytes(runner.conn))])

    pipeline.run(
        runner, [functools.partial(lambda u: u, unit) for unit in units], direction,
        lambda index, duration: durations.append(duration), final=final,
    )  # fmt: skip


def _sql_part(
    runner: Runner, version: str, name: str, display: str, section: Section, statements: Sequence[sql.Statement]
) -> _Part:
    def run(prefix: str) -> None:
        runner.run_statements(version, display, section, statements, prefix=prefix)

    return _Part(version, name, section.options, run, (display, section, statements))


def _python(runner: Runner, migration: MigrationFile, direction: str) -> Callable[[str], None]:
    def run(prefix: str) -> None:
        if prefix:
            runner.conn.execute(prefix.encode("utf-8"), prepare=False)
        runner._run_python(migration, direction)

    return run


def _noting(runner: Runner, notice: str, run: Callable[[str], None]) -> Callable[[str], None]:
    def noted(prefix: str) -> None:
        runner.events.notice(notice)
        run(prefix)

    return noted


def _timeouts_change(
    runner: Runner, current: Timeouts | None, options: SectionOptions
) -> tuple[pgsql.Composed | None, Timeouts]:
    """The SELECT setting the section's timeouts when they differ from ``current`` (else None), and them."""
    wanted = runner._timeouts(options)
    if wanted == current:
        return None, wanted
    return runner.timeouts_query(wanted, local=True, reset_unset=current is not None), wanted


def _label(parts: Sequence[_Part]) -> str:
    """How messages name the migrations of the transaction."""
    first, last = parts[0].version, parts[-1].version
    return first if first == last else f"{first}..{last}"


__all__ = ["apply_atomic", "revert_atomic"]
