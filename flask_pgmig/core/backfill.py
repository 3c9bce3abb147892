"""Resumable batched backfills: key-ordered batches, one short transaction each, progress saved with each.

Inside a migration the runner opens a :func:`scope` naming the migration, so :func:`backfill` can persist its
progress in ``<history table>_backfill`` (one row per migration, direction and backfill name) in the same
transaction as each batch: a batch and its progress commit together or not at all, which is what makes a
killed run resume with every row updated exactly once. Outside a migration nothing is persisted.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..errors import ConfigError
from . import backfill_batches as batches
from .backfill_batches import BackfillResult
from .backfill_directive import (
    DEFAULT_STATEMENT_TIMEOUT_MS,
    BackfillSpec,
    backfill_statements,
    parse_duration_ms,
)
from .events import Events
from .files import Section
from .history import HistoryTable

Connection = psycopg.Connection[Any]

PROGRESS_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    version      text NOT NULL,
    direction    text NOT NULL DEFAULT 'up',
    name         text NOT NULL,
    table_name   text NOT NULL,
    key_column   text NOT NULL,
    last_key     text,
    rows_done    bigint NOT NULL DEFAULT 0,
    batches_done bigint NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (version, direction, name)
)
"""


@dataclass
class Scope:
    """The migration a backfill runs in: where its progress goes, how its batches time out and retry."""

    version: str
    path: Path
    history: HistoryTable
    events: Events = field(default_factory=Events)
    direction: str = "up"
    lock_timeout_ms: int | None = 5000
    lock_retries: int = 3
    retry_base_delay: float = 0.5
    line: int | None = None  # the '-- pgmig:backfill' line, for a SQL backfill
    names: set[str] = field(default_factory=set)


_SCOPE: ContextVar[Scope | None] = ContextVar("pgmig_backfill_scope", default=None)


@contextmanager
def scope(current: Scope) -> Iterator[Scope]:
    """Run the body as part of the migration ``current`` (the runner wraps up()/down() and SQL backfills)."""
    token = _SCOPE.set(current)
    try:
        yield current
    finally:
        _SCOPE.reset(token)


def backfill(
    conn: Connection,
    table: str,
    set_sql: str,
    where_sql: str | None,
    *,
    key: str = "id",
    batch_size: int = 1000,
    sleep: float = 0.0,
    statement_timeout: str | float = DEFAULT_STATEMENT_TIMEOUT_MS / 1000,
    name: str | None = None,
) -> BackfillResult:
    """Run ``UPDATE table SET set_sql WHERE where_sql`` in key-ordered batches, one short transaction each.

    :param conn: the migration's connection (a ``transaction = False`` Python migration's ``conn``); it
        must not be inside a transaction.
    :param table: the table, ``"tasks"`` or ``"schema.tasks"`` (exact names, not SQL).
    :param set_sql: the SET list as SQL, e.g. ``"priority = CASE WHEN done THEN 3 ELSE 2 END"``.
    :param where_sql: which rows, as SQL (``"priority IS NULL"``), or None for every row.
    :param key: a unique, indexed column that orders the batches (exact name).
    :param batch_size: rows per batch (per transaction).
    :param sleep: seconds to pause between batches, to leave room for live traffic and replicas.
    :param statement_timeout: the statement_timeout of each batch: seconds, or a duration such as ``"30s"``.
    :param name: tells two backfills of one table in one migration apart (default: the table).

    In a migration, progress is committed with every batch; a run that was interrupted resumes after the last
    committed batch, and a finished backfill is skipped when the migration runs again.
    """
    current = _SCOPE.get()
    line = _caller_line(current)
    called = f"backfill() of '{table}'{_origin(current, line)}"
    batch_timeout_ms = _timeout_ms(statement_timeout, called)
    if batch_size < 1:
        raise ConfigError(f"{called} got batch_size={batch_size}; give 1 or more rows per batch.")
    if sleep < 0:
        raise ConfigError(f"{called} got sleep={sleep}; give 0 or more seconds.")
    label = name or table
    _refuse_transaction(conn, table, current)
    _claim_name(current, label, table)
    job = batches.Job(
        conn=conn, table=_table_ident(table), key=sql.Identifier(key), set_sql=set_sql, where_sql=where_sql,
        batch_size=batch_size, timeout_ms=batch_timeout_ms, label=label, table_display=table, key_name=key,
        line=line,
    )  # fmt: skip
    if current is None:
        return batches.run(job, batches.Context(), _Memory(), sleep)
    stored = _StoredProgress(conn, current, label, table, key)
    context = batches.Context(
        version=current.version, display=current.path.name, events=current.events,
        lock_timeout_ms=current.lock_timeout_ms, lock_retries=current.lock_retries,
        retry_base_delay=current.retry_base_delay,
    )  # fmt: skip
    return batches.run(job, context, stored, sleep)


def declared(section: Section, display: str, path: str | None = None) -> dict[int, BackfillSpec]:
    """The ``-- pgmig:backfill`` statements of a SQL section by statement index; raises on a bad one."""
    return backfill_statements(
        section.sql,
        section.line,
        transactional=section.options.transaction,
        path=path or display,
        display=display,
    )


def run_declared(conn: Connection, spec: BackfillSpec, current: Scope) -> BackfillResult:
    """Run a ``-- pgmig:backfill`` UPDATE as batches, with its progress recorded under ``current``."""
    with scope(replace(current, line=spec.line)):
        return backfill(
            conn, spec.qualified_table, spec.set_sql, spec.where_sql, key=spec.key,
            batch_size=spec.batch_size, sleep=spec.sleep, statement_timeout=spec.statement_timeout_ms / 1000,
            name=spec.name,
        )  # fmt: skip


def forget(conn: Connection, history: HistoryTable, version: str, *, table_exists: bool | None = None) -> None:
    """Delete the backfill progress of a rolled-back migration, so applying it again starts afresh.

    ``table_exists`` spares the catalog lookup when the caller already knows.
    """
    if table_exists is None:
        table_exists = progress_table_exists(conn, history)
    if table_exists:
        conn.execute(forget_query(history, version))


def forget_query(history: HistoryTable, version: str) -> sql.Composed:
    """:func:`forget` as one statement, for a caller that sends it with others."""
    return sql.SQL("DELETE FROM {} WHERE version = {}").format(progress_ident(history), version)


def forget_many_query(history: HistoryTable, versions: Sequence[str]) -> sql.Composed:
    """:func:`forget_query` for many migrations at once (``rollback --atomic``)."""
    return sql.SQL("DELETE FROM {} WHERE version = ANY({}::text[])").format(
        progress_ident(history), sql.Literal(list(versions))
    )


def progress_table_exists(conn: Connection, history: HistoryTable) -> bool:
    """Whether any backfill ever ran against this history table (one catalog lookup)."""
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [progress_ident(history).as_string(conn)]).fetchone()
    return bool(row and row[0])


def progress_ident(history: HistoryTable) -> sql.Identifier:
    """``<schema>.<history table>_backfill``, next to the history table and its audit log."""
    return sql.Identifier(history.schema, f"{history.table}_backfill")


def ensure_progress_table(conn: Connection, history: HistoryTable) -> None:
    """Create the progress table if it is missing (under the migration lock, so never concurrently)."""
    target = progress_ident(history)
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [target.as_string(conn)]).fetchone()
    if row and row[0]:
        return
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(history.schema)))
        conn.execute(sql.SQL(PROGRESS_DDL).format(table=target))


class _Memory(batches.Progress):
    """Progress of a backfill outside any migration: kept in memory only, so it starts afresh every time."""


class _StoredProgress(batches.Progress):
    """Progress in the progress table, written in the same transaction as each batch."""

    def __init__(self, conn: Connection, current: Scope, label: str, table: str, key: str) -> None:
        super().__init__()
        self.conn = conn
        self.ident = progress_ident(current.history)
        self.where = [current.version, current.direction, label]
        ensure_progress_table(conn, current.history)
        with conn.transaction():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (version, direction, name, table_name, key_column) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ).format(self.ident),
                [*self.where, table, key],
            )
            row = conn.execute(
                sql.SQL(
                    "SELECT table_name, key_column, last_key, rows_done, finished_at IS NOT NULL FROM {} "
                    "WHERE version = %s AND direction = %s AND name = %s"
                ).format(self.ident),
                self.where,
            ).fetchone()
        assert row is not None
        if (row[0], row[1]) != (table, key):
            raise ConfigError(
                f"Backfill '{label}' of migration '{current.version}' was started on table '{row[0]}' "
                f"with key '{row[1]}', but '{current.path.name}' now asks for '{table}' with key '{key}'. "
                "Restore the migration, or give the new backfill another name (name='...') if both are "
                "meant to run."
            )
        self.last_key, self.rows_done, self.finished = row[2], int(row[3]), bool(row[4])
        self.resumed = self.rows_done > 0 or self.last_key is not None

    def record_batch(self, last_key: Any, rows: int) -> None:
        cur = self.conn.execute(
            sql.SQL(
                "UPDATE {} SET last_key = CAST(%s AS text), rows_done = rows_done + %s, "
                "batches_done = batches_done + 1, updated_at = now() "
                "WHERE version = %s AND direction = %s AND name = %s"
            ).format(self.ident),
            [last_key, rows, *self.where],
        )
        self._check(cur.rowcount)
        super().record_batch(last_key, rows)

    def record_finished(self) -> None:
        cur = self.conn.execute(
            sql.SQL(
                "UPDATE {} SET finished_at = now(), updated_at = now() "
                "WHERE version = %s AND direction = %s AND name = %s"
            ).format(self.ident),
            self.where,
        )
        self._check(cur.rowcount)

    def _check(self, rowcount: int) -> None:
        if rowcount != 1:
            raise ConfigError(
                f"The progress row of backfill '{self.where[2]}' (migration '{self.where[0]}') is gone from "
                f"'{self.ident.as_string(self.conn)}'; someone deleted it during the run. Run migrate again: "
                "the backfill starts over from its first batch."
            )


def _timeout_ms(value: str | float, called: str) -> int:
    ms = parse_duration_ms(value) if isinstance(value, str) else round(float(value) * 1000)
    if ms is None or ms <= 0:
        raise ConfigError(
            f"{called} got statement_timeout={value!r}; give seconds above 0 or a duration such as '30s'."
        )
    return ms


def _origin(current: Scope | None, line: int | None) -> str:
    """' (line 12 of '2026..._fill.py')' inside a migration, for error messages; '' outside."""
    if current is None:
        return ""
    return f" (line {line} of '{current.path.name}')" if line else f" (in '{current.path.name}')"


def _table_ident(table: str) -> sql.Identifier:
    schema, dot, name = table.partition(".")
    return sql.Identifier(schema, name) if dot else sql.Identifier(table)


def _refuse_transaction(conn: Connection, table: str, current: Scope | None) -> None:
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
        return
    where = (
        f" Migration '{current.path.name}' runs in one transaction: add 'transaction = False' at its "
        "module level"
        if current is not None
        else " Call it on a connection that is not inside a transaction (autocommit, or outside any "
        "'with conn.transaction()' block)"
    )
    raise ConfigError(
        f"backfill() of '{table}' commits one transaction per batch, so it cannot run inside a "
        f"transaction.{where}."
    )


def _claim_name(current: Scope | None, label: str, table: str) -> None:
    if current is None:
        return
    if label in current.names:
        raise ConfigError(
            f"Migration '{current.path.name}' runs two backfills named '{label}', so the second would look "
            f"finished. Give each backfill of '{table}' its own name (name='...')."
        )
    current.names.add(label)


def _caller_line(current: Scope | None) -> int | None:
    """The line of the migration file that called backfill(), for error messages."""
    if current is None:
        return None
    if current.line is not None:
        return current.line
    frame = sys._getframe(1)
    while frame is not None:
        if Path(frame.f_code.co_filename) == current.path:
            return frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None
