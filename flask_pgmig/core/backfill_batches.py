"""The batch loop of a backfill: key-ordered ranges, one short transaction each, retries, throttling.

Each batch finds the upper key of the next ``batch_size`` rows that still match, then updates the rows of the
key range ``(last_key, upper]`` that match, under a per-batch ``statement_timeout`` and the migration's short
``lock_timeout``. The batch and its progress record commit in one transaction, so a killed run never loses or
repeats a batch. Where the progress goes (a table, or memory) is the caller's :class:`Progress`.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ..errors import MigrationFailed
from .events import Events

Connection = psycopg.Connection[Any]
# A batch that lost a lock race is tried again: the writer it met holds its locks for one short transaction.
RETRYABLE = (
    psycopg.errors.LockNotAvailable,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.SerializationFailure,
)
COUNT_TIMEOUT_MS = 10_000  # counting the rows to do is only for the ETA: give up rather than hold the run


@dataclass(frozen=True)
class Job:
    """One backfill: ``UPDATE table SET set_sql WHERE where_sql``, in batches ordered by ``key``."""

    conn: Connection
    table: sql.Identifier
    key: sql.Identifier
    set_sql: str
    where_sql: str | None
    batch_size: int
    timeout_ms: int
    label: str
    table_display: str
    key_name: str
    line: int | None = None


@dataclass(frozen=True)
class Context:
    """The migration a backfill runs in (empty outside one): names for messages, events, lock settings."""

    version: str | None = None
    display: str | None = None
    events: Events = field(default_factory=Events)
    lock_timeout_ms: int | None = 5000
    lock_retries: int = 3
    retry_base_delay: float = 0.5


class Progress:
    """Where a backfill stands: in memory here; subclasses also write it in the batch's transaction."""

    def __init__(self) -> None:
        self.last_key: Any = None
        self.rows_done = 0
        self.finished = False
        self.resumed = False

    def record_batch(self, last_key: Any, rows: int) -> None:
        """A batch is done; called inside its transaction."""
        self.last_key = last_key
        self.rows_done += rows

    def record_finished(self) -> None:
        """No rows are left; called inside the last (empty) batch's transaction."""
        self.finished = True


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill did: ``rows`` over every run, ``rows_this_run`` in this one."""

    name: str
    table: str
    rows: int
    rows_this_run: int
    batches_this_run: int
    resumed: bool
    already_done: bool
    duration_ms: int


def run(job: Job, context: Context, progress: Progress, sleep: float) -> BackfillResult:
    """Run the batches until no matching row is left after the last key; return what was done."""
    started = time.perf_counter()
    version = context.version or ""
    if progress.finished:
        context.events.notice(f"backfill '{job.label}' of {job.table_display} already finished; skipped")
        return _result(job, progress, 0, 0, started, already_done=True)
    if progress.resumed:
        context.events.notice(
            f"backfill '{job.label}' resumes after key {progress.last_key} ({progress.rows_done} rows done)"
        )
    remaining = _count_remaining(job, context, progress.last_key)
    total = None if remaining is None else progress.rows_done + remaining
    context.events.backfill_started(version, job.label, progress.rows_done, total)
    batches_started = time.perf_counter()  # the rate counts batches only, not the count above
    rows_this_run = batches = 0
    try:
        while True:
            rows = _batch_with_retries(job, context, progress)
            if rows is None:
                break
            rows_this_run += rows
            batches += 1
            elapsed = time.perf_counter() - batches_started
            rate = rows_this_run / elapsed if elapsed > 0 else 0.0
            context.events.batch_done(version, job.label, progress.rows_done, total, rate)
            if sleep > 0:
                time.sleep(sleep)
    except KeyboardInterrupt:
        # the batch in flight (if any) rolled back with its progress: nothing is lost or done twice
        where = "run the migration again to resume" if context.version else "nothing of it was recorded"
        context.events.notice(
            f"backfill '{job.label}' stopped after {progress.rows_done} rows (key {progress.last_key}); "
            f"{where}"
        )
        raise
    result = _result(job, progress, rows_this_run, batches, started, already_done=False)
    context.events.backfill_finished(version, job.label, progress.rows_done, result.duration_ms)
    return result


def _result(
    job: Job, progress: Progress, rows: int, batches: int, started: float, *, already_done: bool
) -> BackfillResult:
    return BackfillResult(
        name=job.label, table=job.table_display, rows=progress.rows_done, rows_this_run=rows,
        batches_this_run=batches, resumed=progress.resumed, already_done=already_done,
        duration_ms=round((time.perf_counter() - started) * 1000),
    )  # fmt: skip


def _batch_with_retries(job: Job, context: Context, progress: Progress) -> int | None:
    """One batch; a lock timeout, deadlock or serialization failure retries it with backoff and jitter."""
    for attempt in range(context.lock_retries + 1):
        try:
            return _batch(job, context, progress)
        except RETRYABLE as exc:
            if attempt >= context.lock_retries:
                raise _failed(job, context, exc, f"after {attempt + 1} attempts ") from exc
            delay = context.retry_base_delay * (2**attempt) * (0.5 + random.random())
            context.events.retrying(context.version or job.label, attempt + 1, delay, _first_line(exc))
            time.sleep(delay)
        except psycopg.errors.QueryCanceled as exc:
            raise _failed(job, context, exc, "", timed_out=True) from exc
        except psycopg.Error as exc:
            if job.conn.broken:
                raise
            raise _failed(job, context, exc, "") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _batch(job: Job, context: Context, progress: Progress) -> int | None:
    """Update the next key range in one transaction with its progress; None when nothing is left."""
    conn = job.conn
    with conn.transaction():
        _set_local_timeouts(conn, job.timeout_ms, context.lock_timeout_ms)
        after, params = _after(job, progress.last_key)
        upper_query = sql.SQL(
            # ORDER BY ... DESC rather than max(): some key types (uuid) have no max aggregate
            "SELECT k FROM (SELECT {key} AS k FROM {table} WHERE {after} AND ({where}) "
            "ORDER BY {key} LIMIT %s) AS batch ORDER BY k DESC LIMIT 1"
        ).format(key=job.key, table=job.table, after=after, where=_where(job))
        row = conn.execute(upper_query, [*params, job.batch_size]).fetchone()
        upper = row[0] if row else None
        if upper is None:
            progress.record_finished()
            return None
        update = sql.SQL("UPDATE {table} SET {set} WHERE {after} AND {key} <= %s AND ({where})").format(
            table=job.table, set=sql.SQL(_escape(job.set_sql)), after=after, key=job.key, where=_where(job)
        )
        rows = conn.execute(update, [*params, upper]).rowcount
        progress.record_batch(upper, rows)
        return rows


def _count_remaining(job: Job, context: Context, last_key: Any) -> int | None:
    """Rows still to do, for the total and the ETA; None when counting takes too long."""
    after, params = _after(job, last_key)
    query = sql.SQL("SELECT count(*) FROM {table} WHERE {after} AND ({where})").format(
        table=job.table, after=after, where=_where(job)
    )
    try:
        with job.conn.transaction():
            _set_local_timeouts(job.conn, min(job.timeout_ms, COUNT_TIMEOUT_MS), None)
            row = job.conn.execute(query, params).fetchone()
    except psycopg.errors.QueryCanceled:
        return None
    except psycopg.Error as exc:
        if job.conn.broken:
            raise
        raise _failed(job, context, exc, "") from exc
    return int(row[0]) if row else None


def _after(job: Job, last_key: Any) -> tuple[sql.Composable, list[Any]]:
    """The lower bound of the next range: none at the start, else ``key > last_key``."""
    if last_key is None:
        return sql.SQL("TRUE"), []
    return sql.SQL("{} > %s").format(job.key), [last_key]


def _where(job: Job) -> sql.Composable:
    return sql.SQL(_escape(job.where_sql)) if job.where_sql and job.where_sql.strip() else sql.SQL("TRUE")


def _escape(fragment: str) -> str:
    """The user's SQL goes into a query with parameters, where a literal '%' must be written '%%'."""
    return fragment.replace("%", "%%")


def _set_local_timeouts(conn: Connection, statement_ms: int, lock_ms: int | None) -> None:
    conn.execute("SELECT set_config('statement_timeout', %s, true)", [f"{statement_ms}ms"])
    if lock_ms is not None:
        conn.execute("SELECT set_config('lock_timeout', %s, true)", [f"{lock_ms}ms"])


def _failed(
    job: Job, context: Context, exc: psycopg.Error, detail: str, *, timed_out: bool = False
) -> MigrationFailed:
    where = f"line {job.line} of '{context.display}'" if context.display and job.line else context.display
    origin = f" ({where})" if where else ""
    if timed_out:
        fix = (
            f"One batch of {job.batch_size} rows ran longer than its statement_timeout of "
            f"{job.timeout_ms} ms. Use a smaller batch_size, a larger statement_timeout, or an index on "
            "the key"
        )
    elif isinstance(exc, RETRYABLE):
        fix = (
            "Live traffic kept the rows locked; run it again at a quieter time (finished batches are "
            "kept), or raise PGMIG_LOCK_TIMEOUT / PGMIG_LOCK_RETRIES"
        )
    else:
        fix = "Fix the backfill's table, key, SET or WHERE SQL and run it again (finished batches are kept)"
    return MigrationFailed(
        f"Backfill '{job.label}' of '{job.table_display}'{origin} failed {detail}(SQLSTATE {exc.sqlstate}): "
        f"{_first_line(exc)}. {fix}.",
        version=context.version or "",
        path=context.display or "",
        line=job.line,
        sqlstate=exc.sqlstate,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
