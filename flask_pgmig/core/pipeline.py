"""Migrations without a wait per statement: libpq's pipeline mode, driven through psycopg.pq.

Each migration goes out as what opens it (BEGIN, its timeouts), its statements one by one and what closes it
(its history write and COMMIT), and the next migration is composed and sent while the server works through
the earlier ones; results are read as they arrive. The client's work (composing the history write, events,
psycopg's own bookkeeping) then overlaps the server's instead of adding to it. Every query is still a
statement of its own, so an error names its statement and line, and the progress events follow the server: a
statement starts when the one before it ends.

Safety rests on how PostgreSQL runs a pipeline: an error makes the server skip everything after it up to the
one Sync, sent at the end, later transactions included, while the transactions committed before it stay
committed. No migration can run after one that failed (even one whose COMMIT failed), and each one still
commits with its history row or not at all. ``migrate --atomic`` sends every migration in one transaction
the same way, then its history rows with the COMMIT: composed while the server still runs the migrations, sent
with their durations once the last one is done.
"""

from __future__ import annotations

import contextlib
import selectors
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import pq

from . import failures, sql
from .files import Section

if TYPE_CHECKING:
    from psycopg.pq.abc import PGresult

    from .runner import Runner

# In one transaction (--atomic) a migration's duration is read off the server's clock between the units: the
# client learns that a unit ended only after the server has started the next one, and would count it short.
_CLOCK = b"SELECT extract(epoch FROM clock_timestamp())"
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)


def supported(conn: psycopg.Connection[Any]) -> bool:
    """Whether this libpq has pipeline mode (14 and later) and the connection is free to enter it."""
    return pq.version() >= 140000 and conn.pgconn.pipeline_status == pq.PipelineStatus.OFF


@dataclass(frozen=True)
class Unit:
    """One migration (or revert) as the pipeline sends it: ``opening`` (BEGIN, timeouts), its statements, then
    ``closing`` (its history write, COMMIT). It is done when the last of these has run."""

    version: str
    name: str
    display: str
    section: Section
    statements: Sequence[sql.Statement]
    opening: tuple[bytes, ...]
    closing: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class _Query:
    unit: int
    part: str  # "opening", "clock", "statement", "write" or "commit"
    index: int = 0  # the statement's, for "statement"
    last: bool = False  # the unit's last query: when it has run, the unit is done


@dataclass(frozen=True)
class Closing:
    """A query of ``final`` (``--atomic``), sent with the COMMIT once every unit is done. It is composed while
    the server still runs the units; with ``durations``, its ``$1`` is bound to their durations in ms (an integer
    array), known only at the end."""

    text: bytes
    durations: bool = False


class LockTimeout(Exception):
    """Unit ``index`` could not get a lock in time (55P03); nothing of it was applied, and nothing after it ran."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


def run(
    runner: Runner,
    units: Sequence[Callable[[], Unit]],
    direction: str,
    done: Callable[[int, int], None],
    *,
    final: Callable[[], Sequence[Closing]] | None = None,
) -> None:
    """Run ``units`` in order; ``done(index, duration_ms)`` as each one is done.

    A unit is composed only when it is about to be sent, while the server runs the ones before it. With
    ``final`` (one transaction for all, ``--atomic``), it is called once every unit is sent, and its queries and
    COMMIT are sent once every unit is done; a lock timeout raises psycopg's LockNotAvailable for the caller to
    retry the whole. Otherwise a lock timeout raises :class:`LockTimeout`. Any other failure raises what the
    classic path raises for it.
    """
    if units:
        _Pipeline(runner, units, direction, done, final).run()


class _Pipeline:
    def __init__(
        self, runner: Runner, compose: Sequence[Callable[[], Unit]], direction: str, done: Callable[[int, int], None],
        final: Callable[[], Sequence[Closing]] | None,
    ) -> None:  # fmt: skip
        self.runner = runner
        self.conn = runner.conn
        self.pgconn = runner.conn.pgconn
        self.compose = compose
        self.units: list[Unit] = []
        self.direction = direction
        self.done = done
        self.final = final
        self.pending: deque[_Query] = deque()  # sent, result not read yet, in order
        self.finished = 0  # units done
        self.durations: list[int] = []  # of the units done, in ms
        self.announced = -1  # the last unit whose migration_started was emitted
        self.started = 0.0
        self.clock = 0.0  # the server's clock when the running unit started (--atomic)
        self.synced = False
        self.failure: tuple[_Query, psycopg.Error] | None = None
        self.selector = selectors.DefaultSelector()
        self.waiting_for = selectors.EVENT_READ

    def run(self) -> None:
        left = True
        self.selector.register(self.pgconn.socket, self.waiting_for)
        try:
            with self.conn.lock:
                self.pgconn.enter_pipeline_mode()
                try:
                    self._send_and_read()
                except psycopg.OperationalError as exc:  # the connection went away under libpq
                    if self.failure is None:
                        self.failure = (self.pending[0] if self.pending else _Query(self.finished, "opening"), exc)
                except BaseException:  # Ctrl-C, SIGTERM, or an error of a callback or of composing a query
                    self._cancel_and_drain()  # or the server would go on running what was sent, locks held
                    raise
                finally:
                    left = self._leave_pipeline_mode()
        finally:
            self.selector.close()
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
            self.units.append(compose())
            self._send_unit(index, self.units[-1])
            self._announce()
            self._pump(until=None)
        if self.final is not None:
            closing = self.final() if self.failure is None else ()  # while the server still runs the units
            self._pump(until=lambda: not self.pending or self.failure is not None)
            if self.failure is None:
                last = len(self.units) - 1
                if len(self.durations) != len(self.units):  # unnest would pad the shorter array with NULLs
                    raise RuntimeError(f"{len(self.durations)} durations for {len(self.units)} migrations")
                durations = ("{" + ",".join(map(str, self.durations)) + "}").encode("ascii")
                for query in closing:
                    self._send(query.text, _Query(last, "write"), [durations] if query.durations else None)
                self._send(b"COMMIT", _Query(last, "commit"))
        self.pgconn.pipeline_sync()
        self.synced = True
        self._pump(until=lambda: False)

    def _send_unit(self, index: int, unit: Unit) -> None:
        queries = [(text, _Query(index, "opening")) for text in unit.opening]
        queries += [
            (statement.text.encode("utf-8"), _Query(index, "statement", number))
            for number, statement in enumerate(unit.statements)
        ]
        queries += [(text, _Query(index, "write")) for text in unit.closing[:-1]]
        queries += [(text, _Query(index, "commit")) for text in unit.closing[-1:]]
        if self.final is not None:
            if index == 0:
                queries.insert(len(unit.opening), (_CLOCK, _Query(index, "clock")))
            queries.append((_CLOCK, _Query(index, "clock")))
        if not queries:
            queries = [(b"", _Query(index, "opening"))]  # an empty query marks when the unit is done
        text, query = queries[-1]
        queries[-1] = (text, _Query(query.unit, query.part, query.index, last=True))
        for text, query in queries:
            self._send(text, query)
        self.pgconn.send_flush_request()  # the server sends the results of what it ran so far without a Sync

    def _send(self, text: bytes, query: _Query, params: Sequence[bytes] | None = None) -> None:
        self.pgconn.send_query_params(text, params)
        self.pending.append(query)

    # -- reading -----------------------------------------------------------------------------------------------
    def _pump(self, *, until: Callable[[], bool] | None) -> None:
        """Send what libpq holds and read what has arrived; then wait for more until ``until()`` is true or the
        Sync's result is in (``until`` None: do not wait)."""
        while True:
            unsent = self.pgconn.flush() != 0
            self.pgconn.consume_input()
            if self._take_results() or until is None or until():
                return
            # a selector, not select.select: a process with many open files may hand libpq a socket above 1023
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if unsent else 0)
            if events != self.waiting_for:
                self.selector.modify(self.pgconn.socket, events)
                self.waiting_for = events
            self.selector.select()

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
        if query.part == "clock":
            clock, self.clock = self.clock, float(result.get_value(0, 0) or 0)
        if query.last:
            unit = self.units[query.unit]
            duration = round((time.perf_counter() - self.started) * 1000)
            if query.part == "clock":
                duration = round((self.clock - clock) * 1000)
            self.finished = query.unit + 1
            self.durations.append(duration)
            self.runner.events.migration_finished(unit.version, unit.name, self.direction, duration)
            self.done(query.unit, duration)
            self._announce()
        following = self.pending[0] if self.pending else None
        if following is not None and following.part == "statement" and following.unit <= self.announced:
            unit = self.units[following.unit]
            text = unit.statements[following.index].text
            self.runner.events.statement_started(unit.version, following.index + 1, len(unit.statements), text)

    def _announce(self) -> None:
        """migration_started for the next unit, once it is sent and the one before it is done."""
        following = self.announced + 1
        if following == self.finished and following < len(self.units) and self.failure is None:
            unit = self.units[following]
            self.runner.events.migration_started(unit.version, unit.name, self.direction)
            self.announced = following
            self.started = time.perf_counter()

    # -- the way out -------------------------------------------------------------------------------------------
    def _cancel_and_drain(self) -> None:
        """Ctrl-C, SIGTERM or an error on this side: cancel the running statement (the rest is then skipped),
        and read up to the Sync so the connection can leave pipeline mode and roll back."""
        with contextlib.suppress(psycopg.Error):
            cancel = getattr(self.conn, "cancel_safe", None) or self.conn.cancel  # cancel_safe: psycopg 3.2
            cancel()
        with contextlib.suppress(psycopg.Error):
            if not self.synced:
                self.pgconn.pipeline_sync()
                self.synced = True
            self._pump(until=lambda: False)

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
            return exc if self.final is not None else LockTimeout(query.unit, exc)
        if query.part == "statement":
            return self.runner.statement_error(
                exc, unit.version, unit.display, unit.section, unit.statements[query.index]
            )
        if query.part == "write" and not lost:
            return self.runner.history.write_failure(self.conn, unit.version, exc)
        return exc
