"""``migrate`` and ``rollback`` without a wait per statement: libpq's pipeline mode, driven through psycopg.pq.

Each migration goes out as BEGIN, its timeouts, its statements one by one, its history write and COMMIT, and
the next migration is composed and sent while the server works through the earlier ones; results are read as
they arrive. The client's work (composing the history write, events, psycopg's own bookkeeping) then overlaps
the server's instead of adding to it. Every query is still a statement of its own, so an error names its
statement and line, and the progress events follow the server: a statement starts when the one before it ends.

Safety rests on how PostgreSQL runs a pipeline: an error makes the server skip everything after it up to the
one Sync, sent at the end, later transactions included, while the transactions committed before it stay
committed. No migration can run after one that failed (even one whose COMMIT failed), and each one still
commits with its history row or not at all.

A lock timeout hands the migration back to the caller, which retries it the classic way: its backoff must not
sleep with later migrations queued behind it.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import select
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import psycopg
from psycopg import pq

from . import backfill, failures, sql
from .files import MigrationFile, Section
from .history import SERVER_DURATION
from .plan import RollbackStep

if TYPE_CHECKING:
    from psycopg.pq.abc import PGresult

    from .runner import Runner

class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


_Item = TypeVar("_Item", bound=_Versioned)
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)


def supported(conn: psycopg.Connection[Any]) -> bool:
    """Whether this libpq has pipeline mode (14 and later) and the connection is free to enter it."""
    return pq.version() >= 140000 and conn.pgconn.pipeline_status == pq.PipelineStatus.OFF


@dataclass(frozen=True)
class Unit:
    """One migration, or one revert, as the pipeline sends it: its section and statements, then ``writes``
    (the history write and what goes with it), then COMMIT."""

    version: str
    name: str
    display: str
    section: Section
    statements: Sequence[sql.Statement]
    writes: tuple[bytes, ...]


@dataclass(frozen=True)
class _Query:
    unit: int
    part: str  # "begin", "timeouts", "statement", "write" or "commit"
    index: int = 0  # the statement's, for "statement"


class LockTimeout(Exception):
    """Unit ``index`` could not get a lock in time (55P03); nothing of it was applied, and nothing after it ran."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def run(
    runner: Runner, units: Sequence[Callable[[], Unit]], direction: str, done: Callable[[int, int], None]
) -> None:
    """Run ``units`` in order, each in its own transaction; ``done(index, duration_ms)`` as each one commits.

    A unit is composed only when it is about to be sent, while the server runs the ones before it. Raises what
    the classic path raises for the first failure (after the transactions before it committed), or
    :class:`LockTimeout`.
    """
    if units:
        _Pipeline(runner, units, direction, done).run()


class _Pipeline:
    def __init__(
        self, runner: Runner, units: Sequence[Callable[[], Unit]], direction: str, done: Callable[[int, int], None]
    ) -> None:
        self.runner = runner
        self.conn = runner.conn
        self.pgconn = runner.conn.pgconn
        self.compose = units
        self.units: list[Unit] = []
        self.direction = direction
        self.done = done
        self.pending: deque[_Query] = deque()  # sent, result not read yet, in order
        self.sent = 0  # units sent
        self.committed = 0  # units whose COMMIT succeeded
        self.announced = -1  # the last unit whose migration_started was emitted
        self.started = 0.0
        self.synced = False
        self.failure: tuple[_Query, psycopg.Error] | None = None

    def run(self) -> None:
        left = True
        try:
            with self.conn.lock:
                self.pgconn.enter_pipeline_mode()
                try:
                    self._send_and_read()
                except KeyboardInterrupt:
                    self._cancel_and_drain()
                    raise
                except psycopg.OperationalError as exc:  # the connection went away under libpq
                    if self.failure is None:
                        self.failure = (self.pending[0] if self.pending else _Query(self.committed, "begin"), exc)
                finally:
                    left = self._leave_pipeline_mode()
        finally:
            if not left:  # results still pending after a second Ctrl-C: drop the session, never reuse it
                self.conn.close()
            self.runner.rollback_quietly()  # a failed transaction, or one cut short by Ctrl-C
        if self.failure is not None:
            error = self._error(*self.failure)
            if error is self.failure[1]:
                raise error
            raise error from self.failure[1]

    def _send_and_read(self) -> None:
        for index, compose in enumerate(self.compose):
            if self.failure is not None:
                break  # the server skips whatever would follow; stop composing it
            unit = compose()
            self.units.append(unit)
            self._send_unit(index, unit)
            self._announce()
            self._pump(until_sync=False)
        self.pgconn.pipeline_sync()
        self.synced = True
        self._pump(until_sync=True)

    def _send_unit(self, index: int, unit: Unit) -> None:
        self._send(b"BEGIN", _Query(index, "begin"))
        timeouts = self.runner.timeouts_sql(unit.section.options)
        if timeouts is not None:
            self._send(timeouts, _Query(index, "timeouts"))
        for number, statement in enumerate(unit.statements):
            self._send(statement.text.encode("utf-8"), _Query(index, "statement", number))
        for write in unit.writes:
            self._send(write, _Query(index, "write"))
        self._send(b"COMMIT", _Query(index, "commit"))
        self.pgconn.send_flush_request()  # the server sends the results of what it ran so far without a Sync
        self.sent = index + 1

    def _send(self, text: bytes, query: _Query) -> None:
        self.pgconn.send_query_params(text, None)
        self.pending.append(query)

    # -- reading -----------------------------------------------------------------------------------------------
    def _pump(self, *, until_sync: bool) -> None:
        """Send what libpq holds and read what has arrived; with ``until_sync``, until the Sync's result."""
        socket = self.pgconn.socket
        while True:
            unsent = self.pgconn.flush() != 0
            self.pgconn.consume_input()
            if self._take_results():
                return
            if not until_sync:
                return
            select.select([socket], [socket] if unsent else [], [])

    def _take_results(self) -> bool:
        """Handle every result that can be read without waiting; True once the Sync's result is in."""
        while not self.pgconn.is_busy():
            result = self.pgconn.get_result()
            if result is None:  # the end of one query's results, or nothing is pending
                if not self.pending and not self.synced:
                    return False
                continue
            if result.status == pq.ExecStatus.PIPELINE_SYNC:
                return True
            self._handle(self.pending.popleft(), result)
        return False

    def _handle(self, query: _Query, result: PGresult) -> None:
        if self.failure is not None or result.status == pq.ExecStatus.PIPELINE_ABORTED:
            return
        if result.status not in _OK:
            self.failure = (query, psycopg.errors.error_from_result(result, encoding=self.conn.info.encoding))
            return
        unit = self.units[query.unit]
        if query.part == "commit":
            duration = round((time.perf_counter() - self.started) * 1000)
            self.committed = query.unit + 1
            self.runner.events.migration_finished(unit.version, unit.name, self.direction, duration)
            self.done(query.unit, duration)
            self._announce()
        elif self.pending and self.pending[0].part == "statement":
            following = self.pending[0]
            text = unit.statements[following.index].text
            self.runner.events.statement_started(unit.version, following.index + 1, len(unit.statements), text)

    def _announce(self) -> None:
        """migration_started for the next unit, once it is sent and the one before it has committed."""
        following = self.announced + 1
        if following == self.committed and following < self.sent and self.failure is None:
            unit = self.units[following]
            self.runner.events.migration_started(unit.version, unit.name, self.direction)
            self.announced = following
            self.started = time.perf_counter()

    # -- the way out -------------------------------------------------------------------------------------------
    def _cancel_and_drain(self) -> None:
        """Ctrl-C or SIGTERM: cancel the running statement (the rest is then skipped), and read up to the Sync
        so the connection can leave pipeline mode and roll back."""
        with contextlib.suppress(psycopg.Error):
            cancel = getattr(self.conn, "cancel_safe", None) or self.conn.cancel  # cancel_safe: psycopg 3.2
            cancel()
        with contextlib.suppress(psycopg.Error):
            if not self.synced:
                self.pgconn.pipeline_sync()
                self.synced = True
            self._pump(until_sync=True)

    def _leave_pipeline_mode(self) -> bool:
        """Back to normal mode; False when results are still pending (the session cannot be used again)."""
        if self.pgconn.status != pq.ConnStatus.OK:
            return True  # a broken connection: nothing to leave
        try:
            self.pgconn.exit_pipeline_mode()
        except psycopg.Error:
            return False
        return True

    def _error(self, query: _Query, exc: psycopg.Error) -> BaseException:
        """What the classic path raises for the same failure."""
        unit = self.units[query.unit]
        lost = failures.is_connection_lost(exc, self.conn)
        if isinstance(exc, psycopg.errors.LockNotAvailable) and query.part in ("statement", "write") and not lost:
            return LockTimeout(query.unit, exc)
        if query.part == "statement":
            return self.runner.statement_error(
                exc, unit.version, unit.display, unit.section, unit.statements[query.index]
            )
        if query.part == "write" and not lost:
            return self.runner.history.write_failure(self.conn, unit.version, exc)
        return exc


# -- migrate and rollback, one transaction per migration -------------------------------------------------------
def apply_each(
    runner: Runner, migrations: Sequence[MigrationFile], done: Callable[[MigrationFile, int], None]
) -> None:
    """Apply ``migrations`` in order, each in its own transaction with its history row: runs of transactional
    SQL migrations through the pipeline, the others (transaction:false, Python) one by one as before."""
    _each(
        runner, migrations, "up", done,
        pipelined=lambda m: _pipelined_up(runner, m),
        compose=lambda m: _up_unit(runner, m),
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
        compose=lambda s: _down_unit(runner, s),
        classic=lambda s, attempts_made: runner.revert(s, files.get(s.version), attempts_made=attempts_made),
    )  # fmt: skip


def _each(
    runner: Runner, items: Sequence[_Item], direction: str, done: Callable[[_Item, int], None], *,
    pipelined: Callable[[_Item], bool], compose: Callable[[_Item], Unit], classic: Callable[[_Item, int], int],
) -> None:  # fmt: skip
    index = 0
    while index < len(items):
        batch = list(itertools.takewhile(pipelined, items[index:]))
        if not batch:
            done(items[index], classic(items[index], 0))
            index += 1
            continue
        runner.ready_for_pipeline(down=direction == "down")
        try:
            run(runner, [functools.partial(compose, item) for item in batch], direction, _Done(batch, done))
        except LockTimeout as timeout:
            item = batch[timeout.index]
            runner.lock_timed_out(item.version, timeout.error, 0)
            done(item, classic(item, 1))
            index += timeout.index + 1
        else:
            index += len(batch)


@dataclass(frozen=True)
class _Done(Generic[_Item]):
    """``done(index, duration)`` of :func:`run`, told about the item itself."""

    batch: Sequence[_Item]
    done: Callable[[_Item, int], None]

    def __call__(self, index: int, duration: int) -> None:
        self.done(self.batch[index], duration)


def _pipelined_up(runner: Runner, migration: MigrationFile) -> bool:
    return migration.kind == "sql" and migration.transactional and not runner.in_transaction and supported(runner.conn)


def _pipelined_down(runner: Runner, step: RollbackStep, files: Mapping[str, MigrationFile | None]) -> bool:
    file = files.get(step.version)
    return (
        step.down.options.transaction
        and not step.from_stored_source  # told about first, by the classic path
        and (file is None or file.kind == "sql")
        and "pgmig:backfill" not in step.down.sql
        and not runner.in_transaction
        and supported(runner.conn)
    )


def _up_unit(runner: Runner, migration: MigrationFile) -> Unit:
    from .runner import preflight

    write = runner.history.upsert_query(migration, "applied", duration_ms=SERVER_DURATION)
    return Unit(
        migration.version, migration.name, migration.path.name, migration.up, preflight(migration),
        (runner.history_write(write).as_bytes(runner.conn),),
    )  # fmt: skip


def _down_unit(runner: Runner, step: RollbackStep) -> Unit:
    writes = [runner.history_write(runner.history.delete_query(step.version)).as_bytes(runner.conn)]
    if runner._progress_table:
        writes.append(backfill.forget_query(runner.history, step.version).as_bytes(runner.conn))
    return Unit(step.version, step.name, step.display, step.down, sql.split_statements(step.down.sql), tuple(writes))
