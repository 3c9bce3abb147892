"""``migrate`` and ``rollback``, one transaction per migration: runs of transactional SQL migrations go through
the pipeline (:mod:`.pipeline`), the others (transaction:false, Python, backfills) one by one as before.

A lock timeout in the pipeline hands the migration back to the classic path, which retries it with its backoff:
the sleep must not happen with later migrations queued behind it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from . import backfill, pipeline
from .files import MigrationFile, Section
from .history import SERVER_DURATION
from .pipeline import LockTimeout, Unit
from .plan import RollbackStep

if TYPE_CHECKING:
    from .runner import Runner


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


_Item = TypeVar("_Item", bound=_Versioned)


def apply_each(
    runner: Runner, migrations: Sequence[MigrationFile], done: Callable[[MigrationFile, int], None]
) -> None:
    """Apply ``migrations`` in order, each in its own transaction with its history row: runs of transactional
    SQL migrations through the pipeline, the others (transaction:false, Python) one by one as before."""
    _each(
        runner, migrations, "up", done,
        pipelined=lambda m: _pipelined_up(runner, m),
        compose=lambda m, last: _up_unit(runner, m, last),
        classic=lambda m, attempts_made: runner.apply(m, attempts_made=attempts_made),
    )  # fmt: skip


def revert_each(
    runner: Runner, steps: Sequence[RollbackStep], files: Mapping[str, MigrationFile | None],
    done: Callable[[RollbackStep, int], None],
) -> None:  # fmt: skip
    """Revert ``steps`` (newest first), each in its own transaction with the removal of its history row; runs of
    plain transactional SQL down sections through the pipeline, the others one by one as before."""
    _each(
        runner, steps, "down", done,
        pipelined=lambda s: _pipelined_down(runner, s, files),
        compose=lambda s, last: _down_unit(runner, s, last),
        classic=lambda s, attempts_made: runner.revert(s, files.get(s.version), attempts_made=attempts_made),
    )  # fmt: skip


def _each(
    runner: Runner, items: Sequence[_Item], direction: str, done: Callable[[_Item, int], None], *,
    pipelined: Callable[[_Item], bool], compose: Callable[[_Item, bool], Unit],
    classic: Callable[[_Item, int], int],
) -> None:  # fmt: skip
    index = 0
    while index < len(items):
        batch = list(itertools.takewhile(pipelined, items[index:]))
        if not batch:
            done(items[index], classic(items[index], 0))
            index += 1
            continue
        runner.ready_for_pipeline(down=direction == "down")
        with _flushed_if_cut_short(runner):
            try:
                units = [functools.partial(compose, item, n == len(batch)) for n, item in enumerate(batch, 1)]
                pipeline.run(runner, units, direction, _Done(batch, done))
            except LockTimeout as timeout:
                item = batch[timeout.index]
                runner.lock_timed_out(item.version, timeout.error, 0)
                done(item, classic(item, 1))  # its COMMIT waits for the flush, which covers the batch's
                index += timeout.index + 1
            else:
                index += len(batch)


@contextlib.contextmanager
def _flushed_if_cut_short(runner: Runner) -> Iterator[None]:
    """Only the last COMMIT of a batch waits for the WAL flush (:func:`_opening`): when anything ends the batch
    before it (a failed statement or COMMIT, Ctrl-C, an error of the caller's callback), flush before the
    error travels on, so that what the batch committed is on disk before the migration lock is released."""
    try:
        yield
    except BaseException:
        runner.flush_quietly()
        raise


@dataclass(frozen=True)
class _Done(Generic[_Item]):
    """``done(index, duration)`` of :func:`run`, told about the item itself."""

    batch: Sequence[_Item]
    done: Callable[[_Item, int], None]

    def __call__(self, index: int, duration: int) -> None:
        self.done(self.batch[index], duration)


def _pipelined_up(runner: Runner, migration: MigrationFile) -> bool:
    return (
        migration.kind == "sql"
        and migration.transactional
        and not runner.in_transaction
        and pipeline.supported(runner.conn)
    )


def _pipelined_down(runner: Runner, step: RollbackStep, files: Mapping[str, MigrationFile | None]) -> bool:
    file = files.get(step.version)
    return (
        step.down.options.transaction
        and not step.from_stored_source  # told about first, by the classic path
        and (file is None or file.kind == "sql")
        and "pgmig:backfill" not in step.down.sql
        and not runner.in_transaction
        and pipeline.supported(runner.conn)
    )


def _up_unit(runner: Runner, migration: MigrationFile, last: bool) -> Unit:
    from .runner import preflight

    write = runner.history.upsert_query(migration, "applied", duration_ms=SERVER_DURATION)
    return Unit(
        migration.version, migration.name, migration.path.name, migration.up, preflight(migration),
        _opening(runner, migration.up, last), (runner.history_write(write).as_bytes(runner.conn), b"COMMIT"),
    )  # fmt: skip


def _down_unit(runner: Runner, step: RollbackStep, last: bool) -> Unit:
    from .runner import preflight_down

    writes = [runner.history_write(runner.history.delete_query(step.version)).as_bytes(runner.conn)]
    if runner.has_progress_table():
        writes.append(backfill.forget_query(runner.history, step.version).as_bytes(runner.conn))
    return Unit(
        step.version, step.name, step.display, step.down, preflight_down(step, None),
        _opening(runner, step.down, last), (*writes, b"COMMIT"),
    )  # fmt: skip


def _opening(runner: Runner, section: Section, last: bool) -> tuple[bytes, ...]:
    """BEGIN and the SELECT setting the transaction's timeouts; and, but for the last migration of a batch,
    ``synchronous_commit = off``: the COMMIT of the last one waits for the WAL to be flushed, which flushes
    every commit written before it."""
    settings = runner.timeouts_sql(section.options, wait_for_flush=last)
    return (b"BEGIN",) if settings is None else (b"BEGIN", settings)
