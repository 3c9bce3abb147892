"""Run one migration (up or down): transaction mode, timeouts, lock-timeout retries, history rows, progress.

A transactional section runs statement by statement inside one transaction that also writes its history row, so
both commit together or not at all. A ``transaction:false`` section runs in autocommit, its row marked ``running``
first, counted statement by statement, and ``applied`` (or ``failed``) at the end.
"""

from __future__ import annotations

import contextlib
import functools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus

from ..errors import ConnectionFailed, HistoryError, MigrationFailed, MigrationParseError, PgMigError
from . import backfill, failures, python_migrations, sql
from .events import Events
from .files import MigrationFile, Section, SectionOptions
from .history import SERVER_DURATION, HistoryTable
from .plan import RollbackStep

Connection = psycopg.Connection[Any]


@dataclass(frozen=True)
class RunSettings:
    """Timeouts and retries for every statement a migration runs (file options override the first two)."""

    lock_timeout_ms: int | None = 5000
    statement_timeout_ms: int | None = None
    lock_retries: int = 3
    retry_base_delay: float = 0.5
    context: Any = None  # handed to Python migrations that accept a second argument (the Flask app)
    role: str | None = None  # PGMIG_ROLE, named in privilege errors
    command: str = "flask db"  # how messages spell the commands to run next


def preflight(migration: MigrationFile, section: Section | None = None) -> list[sql.Statement]:
    """Split a section and refuse, before anything runs, statements its transaction mode cannot run."""
    if migration.kind == "py":
        return []
    return list(_preflight(section or migration.up, migration.path.name, str(migration.path)))


def preflight_down(step: RollbackStep, migration: MigrationFile | None) -> list[sql.Statement]:
    """:func:`preflight` for the down section a rollback runs (from its file or from the stored source)."""
    if migration is not None and migration.kind == "py":
        return []
    path = str(step.path) if step.path else step.display
    return list(_preflight(step.down, step.display, path, "down"))


@functools.lru_cache(maxsize=8192)  # migrate checks every pending file before running any, then runs each
def _preflight(section: Section, display: str, path: str, marker: str = "up") -> tuple[sql.Statement, ...]:
    statements = tuple(sql.split_statements(section.sql))
    backfill.declared(section, display, path)  # a bad '-- pgmig:backfill' stops here
    if not section.options.transaction:
        return statements
    for statement in statements:
        reason = sql.non_transactional_reason(statement) or sql.transaction_control(statement)
        if reason is None:
            continue
        line = section.line + statement.line - 1
        fix = (
            "Remove it: each migration already runs in its own transaction."
            if sql.transaction_control(statement)
            else f"Add 'transaction:false' to the marker line (e.g. '-- migrate:{marker} transaction:false'), and keep "
            "such statements in a migration of their own."
        )
        raise MigrationParseError(
            f"Line {line} of '{display}' has {reason}, which cannot run inside a transaction: "
            f"'{_excerpt(statement.text)}'. {fix}",
            path=path,
            line=line,
            column=statement.column,
        )
    return statements


class Runner:
    """Runs sections on one connection (autocommit) and records them in the history table."""

    def __init__(
        self, conn: Connection, history: HistoryTable, settings: RunSettings, events: Events
    ) -> None:
        self.conn = conn
        self.history = history
        self.settings = settings
        self.events = events
        self._progress = 0  # statements of the running autocommit section that have completed
        self._progress_table: bool | None = None  # whether <history>_backfill exists, once looked up
        self._exact_writes: bool | None = None  # whether the history table has no trigger or rule, once looked up
        self._timeouts_sql: dict[tuple[tuple[int | None, int | None], bool], bytes | None] = {}
        self._client_cursor: psycopg.ClientCursor[Any] | None = None  # inlines parameters into history writes

    # -- up --------------------------------------------------------------------------------------------------
    def apply(self, migration: MigrationFile, *, resume_from: int = 0, attempts_made: int = 0) -> int:
        """Apply one migration and record it; return its duration in milliseconds. ``attempts_made``: lock
        timeouts it already hit (in the pipeline), counted against the retries."""
        statements = preflight(migration)
        self.events.migration_started(migration.version, migration.name, "up")
        started = time.perf_counter()
        if migration.transactional:
            self._with_retries(
                migration.version, lambda: self._apply_in_transaction(migration, statements, started),
                attempts_made=attempts_made,
            )  # fmt: skip
        elif migration.kind == "py":
            self._run_python(migration, "up")
            self.history.record_applied(self.conn, migration, _ms_since(started))
        else:
            self.history.record_running(self.conn, migration, len(statements), resume_from)
            self._run_autocommit(migration, migration.up, statements, resume_from, started, record=True)
            self.history.mark_applied(self.conn, migration.version, _ms_since(started))
        duration = _ms_since(started)
        self.events.migration_finished(migration.version, migration.name, "up", duration)
        return duration

    def apply_atomic(self, migrations: Sequence[MigrationFile]) -> list[int]:
        """Apply migrations in one transaction (--atomic); a lock timeout retries the whole transaction."""
        from .atomic import apply_atomic

        durations: list[int] = apply_atomic(self, migrations)
        return durations

    def apply_each(self, migrations: Sequence[MigrationFile], done: Callable[[MigrationFile, int], None]) -> None:
        """Apply ``migrations`` one transaction each; ``done(migration, duration_ms)`` as each one commits."""
        from .per_migration import apply_each

        apply_each(self, migrations, done)

    def revert_each(
        self, steps: Sequence[RollbackStep], files: Mapping[str, MigrationFile | None],
        done: Callable[[RollbackStep, int], None],
    ) -> None:  # fmt: skip
        """Revert ``steps`` one transaction each; ``done(step, duration_ms)`` as each one commits."""
        from .per_migration import revert_each

        revert_each(self, steps, files, done)

    def ready_for_pipeline(self, *, down: bool = False) -> None:
        """Look up, before a pipeline starts, what composing its history writes needs from the database."""
        self._writes_are_exact()
        if down:
            self.has_progress_table()

    def has_progress_table(self, *, again: bool = False) -> bool:
        """Whether ``<history>_backfill`` exists: looked up once per run, and ``again`` after code that may
        have backfilled (which creates it)."""
        if self._progress_table is None or again:
            self._progress_table = backfill.progress_table_exists(self.conn, self.history)
        return self._progress_table

    def _writes_are_exact(self) -> bool:
        """Whether no trigger or rule on the history table can swallow a write (looked up once per run)."""
        if self._exact_writes is None:
            self._exact_writes = self.history.writes_are_exact(self.conn)
            if self._exact_writes:
                self._client_cursor = psycopg.ClientCursor(self.conn)
        return self._exact_writes

    def revert_atomic(
        self, steps: Sequence[RollbackStep], files: Mapping[str, MigrationFile | None]
    ) -> list[int]:
        """Revert ``steps`` in one transaction (rollback --atomic); a lock timeout retries the whole of it."""
        from .atomic import revert_atomic

        durations: list[int] = revert_atomic(self, steps, files)
        return durations

    def _apply_in_transaction(
        self, migration: MigrationFile, statements: Sequence[sql.Statement], started: float
    ) -> None:
        if migration.kind == "py" or self.in_transaction:  # user code; or dry-run's outer transaction
            with self.conn.transaction():
                self._set_timeouts(migration.up.options, local=True)
                self._apply_body(migration, statements, started)
            return
        write = self.history.upsert_query(migration, "applied", duration_ms=SERVER_DURATION)
        self._transaction(migration.version, migration.path.name, migration.up, statements, self.history_write(write))

    def history_write(self, write: tuple[pgsql.Composed, list[Any]], expected: int = 1) -> pgsql.Composed:
        """A write of history rows to send with the COMMIT, its parameters inlined. Checked by the server only
        when a trigger or rule on the history table could swallow a row (the check costs a little on every
        migration): without one, an upsert always writes its row, and the DELETE of a row that someone removed
        by hand leaves the history just as consistent."""
        if self._writes_are_exact():
            assert self._client_cursor is not None
            return pgsql.Composed([pgsql.SQL(self._client_cursor.mogrify(*write))])
        return self.history.checked(self.conn, write, expected)

    def _transaction(
        self, version: str, display: str, section: Section, statements: Sequence[sql.Statement],
        write: pgsql.Composed, also: pgsql.Composed | None = None,
    ) -> None:  # fmt: skip
        """One transactional SQL section with its history write, in as few round trips as psql needs.

        BEGIN and the timeouts travel with the first statement, the history write with the COMMIT; each
        statement is still sent (and waited for) alone, so an error names its line and the progress display
        names the statement that runs.
        """
        try:
            prefix = self.begin_prefix(section.options)
            self.run_statements(version, display, section, statements, prefix=prefix)
            self.commit_with(version, write, also)
        except BaseException:
            self.rollback_quietly()
            raise

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open on the connection (dry-run --execute runs everything in one)."""
        return self.conn.info.transaction_status != TransactionStatus.IDLE

    def begin_prefix(self, options: SectionOptions) -> str:
        """``BEGIN;`` and the SELECT setting a section's timeouts, to send ahead of its first statement."""
        timeouts = self.timeouts_sql(options)
        return "BEGIN; " if timeouts is None else f"BEGIN; {timeouts.decode('utf-8')}; "

    def timeouts_sql(self, options: SectionOptions, *, wait_for_flush: bool = True) -> bytes | None:
        """The SELECT setting a section's timeouts for its transaction (None when there is none to set);
        without ``wait_for_flush``, it also lets its COMMIT return before the WAL is flushed."""
        key = (self._timeouts(options), wait_for_flush)
        if key not in self._timeouts_sql:  # composed once per distinct pair of timeouts, not per migration
            query = self.timeouts_query(key[0], local=True, wait_for_flush=wait_for_flush)
            self._timeouts_sql[key] = None if query is None else query.as_bytes(self.conn)
        return self._timeouts_sql[key]

    def run_statements(
        self, version: str, display: str, section: Section, statements: Sequence[sql.Statement], *, prefix: str = ""
    ) -> None:
        """Run a section's statements one by one in the open transaction; ``prefix`` goes with the first."""
        total = len(statements)
        for index, statement in enumerate(statements, start=1):
            self.events.statement_started(version, index, total, statement.text)
            self._execute(version, display, section, statement, prefix=prefix)
            prefix = ""
        if prefix:  # a section with no statement (comments only)
            self.conn.execute(prefix.encode("utf-8"), prepare=False)

    def commit_with(self, version: str, write: pgsql.Composed, also: pgsql.Composed | None = None) -> None:
        """The history write (then ``also``) and COMMIT in one round trip.

        When that fails, the transaction status tells who failed: still open (in error) means the write was
        refused, and the message says how to fix the history table; ended means the COMMIT itself failed (a
        deferred constraint), reported like any database error.
        """
        query = pgsql.SQL("{}; COMMIT").format(write if also is None else pgsql.SQL("{}; {}").format(write, also))
        try:
            self.conn.execute(query, prepare=False)
        except psycopg.errors.LockNotAvailable:
            raise
        except psycopg.Error as exc:
            if failures.is_connection_lost(exc, self.conn) or not self.in_transaction:
                raise
            raise self.history.write_failure(self.conn, version, exc) from exc

    def flush_quietly(self) -> None:
        """Wait until every commit made on this connection so far has reached the disk: after a pipelined batch
        whose commits did not wait ended before its last one. A transactional WAL record makes a COMMIT that
        waits for the flush (a transaction that writes no WAL does not wait), and the WAL is flushed in order.
        Best effort: never hides the error that is being raised; the WAL writer flushes within a second anyway."""
        if self.conn.broken or self.conn.closed or self.conn.info.transaction_status != TransactionStatus.IDLE:
            return
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("SELECT pg_catalog.pg_logical_emit_message(true, 'pgmig', 'flush')")

    def rollback_quietly(self) -> None:
        """End a failed or interrupted transaction; never hide the error that is being raised."""
        if self.conn.broken or self.conn.closed or self.conn.info.transaction_status == TransactionStatus.IDLE:
            return
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("ROLLBACK")

    def _apply_body(self, migration: MigrationFile, statements: Sequence[sql.Statement], started: float) -> None:
        """A transactional migration's up section and its history row, inside the caller's transaction."""
        if migration.kind == "py":
            self._run_python(migration, "up")
        else:
            self._run_statements(migration.version, migration.path.name, migration.up, statements)
        self.history.record_applied(self.conn, migration, _ms_since(started))

    # -- down ------------------------------------------------------------------------------------------------
    def revert(self, step: RollbackStep, migration: MigrationFile | None = None, *, attempts_made: int = 0) -> int:
        """Run one migration's down section and delete its history row; return the duration in ms.
        ``attempts_made``: lock timeouts it already hit (in the pipeline), counted against the retries."""
        self.events.migration_started(step.version, step.name, "down")
        if step.from_stored_source:
            self.events.notice(
                f"{step.id}: file is gone, reverting with the down section stored at apply time"
            )
        started = time.perf_counter()
        is_python = migration is not None and migration.kind == "py"
        statements = preflight_down(step, migration)  # checked before the run began: split once
        if step.down.options.transaction:

            def attempt() -> None:
                with self.conn.transaction():
                    self._set_timeouts(step.down.options, local=True)
                    if is_python and migration is not None:
                        self._run_python(migration, "down")
                    else:
                        self._run_statements(step.version, step.display, step.down, statements)
                    self.history.delete(self.conn, step.version)
                    self._forget_backfill(step, ran_code=is_python)

            if is_python or self.in_transaction or "pgmig:backfill" in step.down.sql:
                self._with_retries(step.version, attempt, attempts_made=attempts_made)
            else:
                revert_sql = functools.partial(self._revert_sql, step, statements)
                self._with_retries(step.version, revert_sql, attempts_made=attempts_made)
        else:
            if is_python and migration is not None:
                self._run_python(migration, "down")
            else:
                self._run_autocommit_down(step, statements, started)
            self.history.delete(self.conn, step.version)
            self._forget_backfill(step, ran_code=is_python)
        duration = _ms_since(started)
        self.events.migration_finished(step.version, step.name, "down", duration)
        return duration

    def _revert_sql(self, step: RollbackStep, statements: Sequence[sql.Statement]) -> None:
        write = self.history_write(self.history.delete_query(step.version))
        forget = backfill.forget_query(self.history, step.version) if self.has_progress_table() else None
        self._transaction(step.version, step.display, step.down, statements, write, forget)

    def _forget_backfill(self, step: RollbackStep, *, ran_code: bool) -> None:
        """Drop a reverted migration's backfill progress, so applying it again backfills afresh.

        Whether the progress table exists is looked up once per run, and again after a down section that
        may have backfilled (which creates it).
        """
        exists = self.has_progress_table(again=ran_code or "pgmig:backfill" in step.down.sql)
        backfill.forget(self.conn, self.history, step.version, table_exists=exists)

    def _run_autocommit_down(
        self, step: RollbackStep, statements: Sequence[sql.Statement], started: float
    ) -> None:
        try:
            self._run_autocommit_statements(step.version, step.display, step.down, statements, 0, direction="down")
        except _StatementFailed as failure:
            self._record_failure(
                step.version, 0,
                f"rollback stopped after {failure.done} of {len(statements)} statements: {failure.error.message}",
                started,
            )  # fmt: skip
            raise failure.error from failure.error.__cause__
        except KeyboardInterrupt:
            self._record_failure(
                step.version, 0,
                f"rollback interrupted (Ctrl-C or SIGTERM) after {self._progress} of {len(statements)} statements; "
                "the running statement was cancelled",
                started,
            )  # fmt: skip
            raise

    # -- statements ------------------------------------------------------------------------------------------
    def _run_statements(
        self, version: str, display: str, section: Section, statements: Sequence[sql.Statement]
    ) -> None:
        total = len(statements)
        for index, statement in enumerate(statements, start=1):
            self.events.statement_started(version, index, total, statement.text)
            self._execute(version, display, section, statement)

    def _run_autocommit(
        self, migration: MigrationFile, section: Section, statements: Sequence[sql.Statement], resume_from: int,
        started: float, *, record: bool,
    ) -> None:  # fmt: skip
        try:
            self._run_autocommit_statements(
                migration.version, migration.path.name, section, statements, resume_from, record=record
            )
        except _StatementFailed as failure:
            self._record_failure(migration.version, failure.done, failure.error.message, started)
            raise failure.error from failure.error.__cause__
        except KeyboardInterrupt:
            self._record_failure(
                migration.version, self._progress,
                f"interrupted (Ctrl-C or SIGTERM) after {self._progress} of {len(statements)} statements; the "
                "running statement was cancelled",
                started,
            )  # fmt: skip
            raise

    def _record_failure(self, version: str, done: int, error: str, started: float) -> None:
        """Leave the row ``failed``; never let a failure to record it hide the error being raised."""
        if self.conn.broken or self.conn.closed:
            return  # the row stays 'running', which status reports as interrupted
        with contextlib.suppress(psycopg.Error, HistoryError):
            self.history.record_failed(self.conn, version, done, error, _ms_since(started))

    def _run_autocommit_statements(
        self, version: str, display: str, section: Section, statements: Sequence[sql.Statement], resume_from: int,
        *, record: bool = False, direction: str = "up",
    ) -> None:  # fmt: skip
        total = len(statements)
        self._progress = resume_from
        backfills = backfill.declared(section, display)
        for index in range(resume_from, total):
            statement = statements[index]
            self.events.statement_started(version, index + 1, total, statement.text)
            exempt = sql.is_concurrently(statement)
            if exempt:
                # an earlier run of this statement (killed, cancelled, failed) may have left its index INVALID;
                # CREATE INDEX ... IF NOT EXISTS would then silently keep the broken one
                self._drop_invalid_index(statement)
            try:
                if index in backfills:  # '-- pgmig:backfill': batches that commit one by one and resume
                    scope = self._backfill_scope(version, display, direction, section.options)
                    backfill.run_declared(self.conn, backfills[index], scope)
                else:
                    self._with_retries(
                        version,
                        lambda st=statement, ex=exempt: self._execute_autocommit(
                            version, display, section, st, ex
                        ),  # type: ignore[misc]
                        before_retry=lambda st=statement: self._drop_invalid_index(st),  # type: ignore[misc]
                    )
            except MigrationFailed as error:
                raise _StatementFailed(index, error) from None
            if record:
                self.history.record_progress(self.conn, version, index + 1)
            self._progress = index + 1
        self.conn.execute("RESET lock_timeout")
        self.conn.execute("RESET statement_timeout")

    def _execute_autocommit(
        self, version: str, display: str, section: Section, statement: sql.Statement, exempt: bool
    ) -> None:
        lock_timeout = 0 if exempt else self._lock_timeout(section.options)
        self._set_timeouts(section.options, local=False, lock_timeout_ms=lock_timeout)
        self._execute(version, display, section, statement)

    def _execute(
        self, version: str, display: str, section: Section, statement: sql.Statement, *, prefix: str = ""
    ) -> None:
        try:
            self.conn.execute((prefix + statement.text).encode("utf-8"), prepare=False)
        except psycopg.errors.LockNotAvailable:
            raise
        except psycopg.Error as exc:
            raise self.statement_error(exc, version, display, section, statement, len(prefix)) from exc

    def statement_error(
        self, exc: psycopg.Error, version: str, display: str, section: Section, statement: sql.Statement,
        prefix_length: int = 0,
    ) -> PgMigError:  # fmt: skip
        """What to raise when ``statement`` failed (sent after ``prefix_length`` characters of other SQL)."""
        if failures.is_connection_lost(exc, self.conn):
            command = self.settings.command
            return ConnectionFailed(
                f"The connection to PostgreSQL was lost while running migration '{version}' ({display}, line "
                f"{section.line + statement.line - 1}): {failures.lost_reason(exc)}. A migration that runs in "
                "one transaction was rolled back by the server; a transaction:false one shows as failed or "
                f"interrupted. Run '{command} status' once the server is back and follow what it says.",
                sqlstate=exc.sqlstate,
            )
        return _migration_failed(
            exc, version, display, section, statement, self._advice(exc), prefix_length=prefix_length
        )

    def _advice(self, exc: psycopg.Error) -> str | None:
        """What to do when the cause is not the migration's SQL (privileges, deadlock, timeout...)."""
        return failures.advice(
            exc.sqlstate,
            failures.first_line(exc),
            role=failures.role_name(self.conn, self.settings.role),
            statement_timeout_ms=self.settings.statement_timeout_ms,
            is_set_role=bool(self.settings.role),
        )

    def _lock_timeout(self, options: SectionOptions) -> int | None:
        return (
            options.lock_timeout_ms if options.lock_timeout_ms is not None else self.settings.lock_timeout_ms
        )

    def _timeouts(
        self, options: SectionOptions, lock_timeout_ms: int | None = None
    ) -> tuple[int | None, int | None]:
        """(lock_timeout, statement_timeout) in ms for a section: its file options, else the settings."""
        lock_timeout = self._lock_timeout(options) if lock_timeout_ms is None else lock_timeout_ms
        statement_timeout = (
            options.statement_timeout_ms
            if options.statement_timeout_ms is not None
            else self.settings.statement_timeout_ms
        )
        return lock_timeout, statement_timeout

    def _set_timeouts(
        self, options: SectionOptions, *, local: bool, lock_timeout_ms: int | None = None
    ) -> None:
        self._apply_timeouts(self._timeouts(options, lock_timeout_ms), local=local)

    def _apply_timeouts(
        self, timeouts: tuple[int | None, int | None], *, local: bool, reset_unset: bool = False
    ) -> None:
        """One round trip setting both timeouts; ``reset_unset`` turns an unset one back to 0 (no limit)."""
        query = self.timeouts_query(timeouts, local=local, reset_unset=reset_unset)
        if query is not None:
            self.conn.execute(query)

    @staticmethod
    def timeouts_query(
        timeouts: tuple[int | None, int | None], *, local: bool, reset_unset: bool = False,
        wait_for_flush: bool = True,
    ) -> pgsql.Composed | None:  # fmt: skip
        """The SELECT setting both timeouts (None when there is nothing to set); without ``wait_for_flush``
        (``local`` only), also ``synchronous_commit = off`` for the transaction."""
        settings: list[tuple[str, str]] = []
        for name, value in zip(("lock_timeout", "statement_timeout"), timeouts, strict=True):
            if value is not None or reset_unset:
                settings.append((name, f"{value or 0}ms"))
        if not wait_for_flush:
            assert local, "synchronous_commit is only ever turned off for one transaction"
            settings.append(("synchronous_commit", "off"))
        if not settings:
            return None
        return pgsql.SQL("SELECT ") + pgsql.SQL(", ").join(
            pgsql.SQL("set_config({}, {}, {})").format(pgsql.Literal(name), pgsql.Literal(value), pgsql.Literal(local))
            for name, value in settings
        )

    # -- retries ---------------------------------------------------------------------------------------------
    def _with_retries(
        self, version: str, attempt: Callable[[], None], before_retry: Callable[[], None] | None = None,
        attempts_made: int = 0,
    ) -> None:  # fmt: skip
        """Run ``attempt``, again after each lock timeout while retries are left (``attempts_made`` already
        failed elsewhere, in the pipeline)."""
        for number in range(attempts_made, self.settings.lock_retries + 1):
            try:
                attempt()
                return
            except psycopg.errors.LockNotAvailable as exc:
                self.lock_timed_out(version, exc, number, before_retry)

    def lock_timed_out(
        self, version: str, exc: psycopg.Error, number: int, before_retry: Callable[[], None] | None = None
    ) -> None:
        """Attempt ``number`` (from 0) hit lock_timeout: raise when no retry is left, else tell, run
        ``before_retry`` and wait before the next attempt."""
        retries = self.settings.lock_retries
        if number >= retries:
            raise MigrationFailed(
                f"Migration '{version}' could not get a lock within lock_timeout after {retries + 1} "
                f"attempts (SQLSTATE 55P03: {failures.first_line(exc)}). Live traffic holds locks on the "
                "tables it changes; run it again at a quieter time, or raise PGMIG_LOCK_TIMEOUT / "
                "PGMIG_LOCK_RETRIES.",
                version=version,
                path=version,
                sqlstate="55P03",
            ) from exc
        delay = self.settings.retry_base_delay * (2**number) * (0.5 + random.random())
        self.events.retrying(version, number + 1, delay, failures.first_line(exc))
        if before_retry is not None:
            before_retry()
        time.sleep(delay)

    def _drop_invalid_index(self, statement: sql.Statement) -> None:
        """A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind; drop it before trying again."""
        target = sql.created_index_name(statement)
        if target is None or not sql.is_concurrently(statement):
            return
        schema, name = target
        row = self.conn.execute(
            "SELECT n.nspname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = %s AND NOT i.indisvalid "
            "AND (%s::text IS NULL AND pg_table_is_visible(c.oid) OR n.nspname = %s)",
            [name, schema, schema],
        ).fetchone()
        if row is not None:
            self.conn.execute(
                pgsql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(pgsql.Identifier(row[0], name))
            )
            self.events.notice(f"dropped the INVALID index {row[0]}.{name} left by the failed attempt")

    # -- Python migrations -----------------------------------------------------------------------------------
    def _backfill_scope(
        self, version: str, path: str, direction: str, options: SectionOptions | None = None
    ) -> backfill.Scope:
        """Where backfills of this migration keep their progress, with its lock timeout and retries."""
        return backfill.Scope(
            version=version, path=Path(path), history=self.history, events=self.events, direction=direction,
            lock_timeout_ms=self._lock_timeout(options or SectionOptions()), lock_retries=self.settings.lock_retries,
            retry_base_delay=self.settings.retry_base_delay,
        )  # fmt: skip

    def _run_python(self, migration: MigrationFile, direction: str) -> None:
        if not migration.transactional:  # autocommit: its DDL still gets the short lock_timeout
            self._set_timeouts(migration.up.options, local=False)
        try:
            with backfill.scope(self._backfill_scope(migration.version, str(migration.path), direction)):
                python_migrations.call(self.conn, migration, direction, self.settings.context)
        except PgMigError:
            raise
        except psycopg.Error as exc:
            raise python_migrations.failure(exc, migration, direction, self._advice(exc)) from exc
        except Exception as exc:  # a bug in the migration's own Python is a user error: a message, no traceback
            raise python_migrations.failure(exc, migration, direction, None) from exc
        finally:
            if not migration.transactional and not self.conn.broken:
                with contextlib.suppress(psycopg.Error):
                    self.conn.execute("RESET lock_timeout")
                    self.conn.execute("RESET statement_timeout")


class _StatementFailed(Exception):
    def __init__(self, done: int, error: MigrationFailed) -> None:
        super().__init__(error.message)
        self.done = done
        self.error = error


def _migration_failed(
    exc: psycopg.Error,
    version: str,
    display: str,
    section: Section,
    statement: sql.Statement,
    advice: str | None = None,
    *,
    prefix_length: int = 0,
) -> MigrationFailed:
    diag = exc.diag
    position = int(diag.statement_position) - prefix_length if diag.statement_position else None
    if position is not None and position >= 1:
        # PostgreSQL counts the position in characters of the statement as sent, from 1.
        in_section = statement.start + position - 1
        line, column = sql.position_to_line_column(section.sql, in_section)
    else:
        line, column = statement.line, statement.column
    file_line = section.line + line - 1
    mode = (
        "Nothing of this migration was applied (it ran in one transaction)"
        if section.options.transaction
        else "Statements before this one were committed (transaction:false)"
    )
    return MigrationFailed(
        f"Migration '{version}' failed at line {file_line}, column {column} of '{display}' "
        f"(SQLSTATE {exc.sqlstate}): {failures.first_line(exc)}. Statement: '{_excerpt(statement.text)}'. "
        f"{mode}; {advice or 'fix the SQL and run migrate again.'}",
        version=version,
        path=display,
        line=file_line,
        column=column,
        sqlstate=exc.sqlstate,
        statement=statement.text,
    )


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
