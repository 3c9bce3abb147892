"""The history table and the audit log: create them, read them, record what ran.

Every identifier is composed with :class:`psycopg.sql.Identifier`; every write checks its row count.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from .. import __version__
from ..errors import HistoryError
from .files import MigrationFile
from .plan import HistoryRecord

Connection = psycopg.Connection[Any]

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    version          text PRIMARY KEY,
    name             text NOT NULL,
    kind             text NOT NULL DEFAULT 'sql',
    checksum         text NOT NULL,
    status           text NOT NULL CHECK (status IN ('applied', 'failed', 'running')),
    up_sql           text NOT NULL,
    down_sql         text,
    down_options     text NOT NULL DEFAULT '',
    applied_at       timestamptz NOT NULL DEFAULT now(),
    applied_by       text NOT NULL DEFAULT current_user,
    host             text,
    tool_version     text,
    duration_ms      integer,
    statements_done  integer,
    statements_total integer,
    error            text,
    file_sha256      text
);
CREATE TABLE IF NOT EXISTS {audit} (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    action       text NOT NULL,
    outcome      text NOT NULL,
    versions     text[] NOT NULL DEFAULT '{{}}',
    detail       jsonb NOT NULL DEFAULT '{{}}',
    role         text NOT NULL DEFAULT current_user,
    host         text,
    pid          integer NOT NULL DEFAULT pg_backend_pid(),
    tool_version text
);
"""

RECORD_COLUMNS = (
    "version", "name", "checksum", "status", "applied_at", "duration_ms", "down_sql", "down_options",
    "statements_done", "statements_total", "error", "kind", "file_sha256",
)  # fmt: skip
# Added after the first release: ensure() adds it to older history tables, readers tolerate its absence.
LATE_COLUMNS = ("file_sha256",)
# A transactional migration's duration as the server measured it: from BEGIN (now()) to its history write.
SERVER_DURATION = sql.SQL("(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer")
# Raised by the server itself when a checked write (see HistoryTable.checked) changed a wrong number of rows.
WRITE_CHECK = "pgmig: writing the history changed"
EARLY_COLUMNS = tuple(column for column in RECORD_COLUMNS if column not in LATE_COLUMNS)


@dataclass(frozen=True)
class HistoryTable:
    """Where the history lives: ``schema.table`` and its audit log ``schema.table_audit``."""

    schema: str = "public"
    table: str = "pgmig_history"

    @property
    def ident(self) -> sql.Identifier:
        """The history table's qualified name."""
        return sql.Identifier(self.schema, self.table)

    @property
    def audit_ident(self) -> sql.Identifier:
        """The audit log's qualified name."""
        return sql.Identifier(self.schema, f"{self.table}_audit")

    @property
    def display(self) -> str:
        """``schema.table`` for messages."""
        return f"{self.schema}.{self.table}"

    def exists(self, conn: Connection) -> bool:
        """Whether the history table exists (one cheap catalog query, no DDL)."""
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [self.ident.as_string(conn)]).fetchone()
        return bool(row and row[0])

    def ensure(self, conn: Connection) -> None:
        """Create the schema, history table and audit log if they are missing, and add columns that later
        releases introduced to an older history table (call under the lock)."""
        row = conn.execute(
            "SELECT to_regclass(%(history)s) IS NOT NULL AND to_regclass(%(audit)s) IS NOT NULL AND "
            "(SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass(%(history)s) "
            "AND attname = ANY(%(late)s) AND NOT attisdropped) = %(count)s",
            {
                "history": self.ident.as_string(conn), "audit": self.audit_ident.as_string(conn),
                "late": list(LATE_COLUMNS), "count": len(LATE_COLUMNS),
            },
        ).fetchone()  # fmt: skip
        if row is not None and row[0]:
            return
        # a missing privilege here is translated by the caller (failures.translating) into what to grant
        # No wait for the WAL flush when the transaction is this one's: what the run commits next waits for it, and
        # the WAL is flushed in order; a crash before that loses only this DDL, which the next run repeats.
        own_transaction = conn.info.transaction_status == TransactionStatus.IDLE
        ddl = sql.SQL(
            "{}CREATE SCHEMA IF NOT EXISTS {}; {}; ALTER TABLE {} ADD COLUMN IF NOT EXISTS file_sha256 text"
        ).format(
            sql.SQL("SET LOCAL synchronous_commit = off; " if own_transaction else ""),
            sql.Identifier(self.schema),
            sql.SQL(HISTORY_DDL).format(table=self.ident, audit=self.audit_ident),
            self.ident,
        )
        with conn.transaction():
            conn.execute(ddl)  # no parameters: one round trip for all of it

    def read(self, conn: Connection) -> list[HistoryRecord]:
        """Every history row; an empty list when the table does not exist yet."""
        # a savepoint only inside a transaction (dry-run): in autocommit a failed SELECT leaves nothing to undo
        guard = conn.transaction if conn.info.transaction_status != TransactionStatus.IDLE else contextlib.nullcontext
        try:
            with guard():
                rows = conn.execute(self.select_records(RECORD_COLUMNS)).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        except psycopg.errors.UndefinedColumn:  # a history table from before the late columns: read the rest
            with guard():
                rows = conn.execute(self.select_records(EARLY_COLUMNS)).fetchall()
        return [HistoryRecord(*row) for row in rows]

    def select_records(self, columns: Sequence[str] = RECORD_COLUMNS) -> sql.Composed:
        """The query reading every history row as :class:`HistoryRecord` fields, in ``columns`` order."""
        return sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, columns)), self.ident)

    def up_sql(self, conn: Connection, version: str) -> str | None:
        """The up source stored for one version."""
        row = conn.execute(
            sql.SQL("SELECT up_sql FROM {} WHERE version = %s").format(self.ident), [version]
        ).fetchone()
        return None if row is None else str(row[0])

    def record_applied(self, conn: Connection, migration: MigrationFile, duration_ms: int) -> None:
        """Insert (or complete) the row of a migration that has just been applied."""
        self._upsert(conn, migration, "applied", duration_ms=duration_ms, done=None, total=None, error=None)

    def record_running(self, conn: Connection, migration: MigrationFile, total: int, done: int = 0) -> None:
        """Mark a non-transactional migration as started, before its first statement runs."""
        self._upsert(conn, migration, "running", duration_ms=None, done=done, total=total, error=None)

    def record_progress(self, conn: Connection, version: str, done: int) -> None:
        """Count one more completed statement of a non-transactional migration."""
        self._update(conn, version, sql.SQL("statements_done = %s"), [done])

    def record_failed(self, conn: Connection, version: str, done: int, error: str, duration_ms: int) -> None:
        """Leave a non-transactional migration's row ``failed`` with what completed and why it stopped."""
        self._update(
            conn,
            version,
            sql.SQL("status = 'failed', statements_done = %s, error = %s, duration_ms = %s"),
            [done, error, duration_ms],
        )

    def mark_applied(self, conn: Connection, version: str, duration_ms: int | None = None) -> None:
        """Set an existing row to ``applied`` (end of a non-transactional run, or a repair)."""
        self._update(
            conn,
            version,
            sql.SQL("status = 'applied', error = NULL, duration_ms = coalesce(%s, duration_ms)"),
            [duration_ms],
        )

    def set_checksum(self, conn: Connection, migration: MigrationFile) -> None:
        """Accept an edited file: store its new checksum and sections."""
        self._update(
            conn,
            migration.version,
            sql.SQL("checksum = %s, up_sql = %s, down_sql = %s, down_options = %s, file_sha256 = %s"),
            [migration.checksum, *_sections(migration), migration.file_sha256 or None],
        )

    def delete(self, conn: Connection, version: str) -> None:
        """Remove the row of a migration that was rolled back."""
        cur = self._write(conn, version, *self.delete_query(version))
        self.check_one(cur.rowcount, version)

    def audit(
        self, conn: Connection, action: str, outcome: str, versions: Sequence[str], detail: dict[str, Any]
    ) -> None:
        """Append one entry to the audit log."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (action, outcome, versions, detail, host, tool_version) VALUES (%s, %s, %s, %s, %s, %s)"
            ).format(self.audit_ident),
            [action, outcome, list(versions), json.dumps(detail, default=str), _host(), __version__],
        )

    def audit_log(self, conn: Connection, limit: int = 100) -> list[tuple[Any, ...]]:
        """The newest audit entries, newest first."""
        try:
            with conn.transaction():
                return conn.execute(
                    sql.SQL(
                        "SELECT id, at, action, outcome, versions, detail, role, host, pid FROM {} "
                        "ORDER BY id DESC LIMIT %s"
                    ).format(self.audit_ident),
                    [limit],
                ).fetchall()
        except psycopg.errors.UndefinedTable:
            return []

    def _upsert(
        self,
        conn: Connection,
        migration: MigrationFile,
        status: str,
        *,
        duration_ms: int | None,
        done: int | None,
        total: int | None,
        error: str | None,
    ) -> None:
        query, params = self.upsert_query(
            migration, status, duration_ms=duration_ms, done=done, total=total, error=error
        )
        cur = self._write(conn, migration.version, query, params)
        self.check_one(cur.rowcount, migration.version)

    def upsert_query(
        self,
        migration: MigrationFile,
        status: str,
        *,
        duration_ms: int | sql.Composable | None,
        done: int | None = None,
        total: int | None = None,
        error: str | None = None,
    ) -> tuple[sql.Composed, list[Any]]:
        """The INSERT ... ON CONFLICT writing a migration's row; ``duration_ms`` may be a SQL expression
        (:data:`SERVER_DURATION`) when the server measures it."""
        duration = duration_ms if isinstance(duration_ms, sql.Composable) else sql.Placeholder()
        query = sql.SQL(
            "INSERT INTO {} (version, name, kind, checksum, status, up_sql, down_sql, down_options, host, "
            "tool_version, duration_ms, statements_done, statements_total, error, file_sha256) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {}, %s, %s, %s, %s) "
            "ON CONFLICT (version) DO UPDATE SET status = EXCLUDED.status, duration_ms = EXCLUDED.duration_ms, "
            "statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total, "
            "error = EXCLUDED.error, checksum = EXCLUDED.checksum, applied_at = now(), "
            # a resumed migration may have been edited after its completed prefix: store what now runs
            "name = EXCLUDED.name, kind = EXCLUDED.kind, up_sql = EXCLUDED.up_sql, down_sql = EXCLUDED.down_sql, "
            "down_options = EXCLUDED.down_options, file_sha256 = EXCLUDED.file_sha256"
        ).format(self.ident, duration)
        down_sql, down_options = _sections(migration)[1:]
        params: list[Any] = [
            migration.version, migration.name, migration.kind, migration.checksum, status, migration.up.sql,
            down_sql, down_options, _host(), __version__,
        ]  # fmt: skip
        if not isinstance(duration_ms, sql.Composable):
            params.append(duration_ms)
        params += [done, total, error, migration.file_sha256 or None]
        return query, params

    def upsert_many_query(
        self, migrations: Sequence[MigrationFile], durations_ms: Sequence[int | None] | None
    ) -> tuple[sql.Composed, list[Any]]:
        """One INSERT ... ON CONFLICT writing the ``applied`` rows of many migrations (``--atomic``).

        With ``durations_ms`` None the durations are left to the query's ``$1`` (an integer array), bound when
        the query is sent: the pipeline composes the write while the server still runs the migrations."""
        columns = [
            "version", "name", "kind", "checksum", "up_sql", "down_sql", "down_options", "file_sha256",
            "duration_ms",
        ]  # fmt: skip
        types = ["text", "text", "text", "text", "text", "text", "text", "text"]
        rows = [(m.version, m.name, m.kind, m.checksum, *_sections(m), m.file_sha256 or None) for m in migrations]
        arrays = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in types]
        unnested: list[sql.Composable] = [sql.SQL("%s::{}[]").format(sql.SQL(kind)) for kind in types]
        if durations_ms is None:
            unnested.append(sql.SQL("$1::integer[]"))
        else:
            if len(durations_ms) != len(migrations):
                raise ValueError(f"{len(durations_ms)} durations for {len(migrations)} migrations")
            unnested.append(sql.SQL("%s::integer[]"))
            arrays.append(list(durations_ms))
        query = sql.SQL(
            "INSERT INTO {} ({}, status, host, tool_version) SELECT *, 'applied', %s, %s FROM unnest({}) "
            "ON CONFLICT (version) DO UPDATE SET status = EXCLUDED.status, duration_ms = EXCLUDED.duration_ms, "
            "statements_done = NULL, statements_total = NULL, error = NULL, checksum = EXCLUDED.checksum, "
            "applied_at = now(), name = EXCLUDED.name, kind = EXCLUDED.kind, up_sql = EXCLUDED.up_sql, "
            "down_sql = EXCLUDED.down_sql, down_options = EXCLUDED.down_options, file_sha256 = EXCLUDED.file_sha256"
        ).format(self.ident, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(unnested))
        return query, [_host(), __version__, *arrays]

    def delete_query(self, version: str) -> tuple[sql.Composed, list[Any]]:
        """The DELETE removing a rolled-back migration's row."""
        return sql.SQL("DELETE FROM {} WHERE version = %s").format(self.ident), [version]

    def delete_many_query(self, versions: Sequence[str]) -> tuple[sql.Composed, list[Any]]:
        """One DELETE removing the rows of many rolled-back migrations (``rollback --atomic``)."""
        return sql.SQL("DELETE FROM {} WHERE version = ANY(%s::text[])").format(self.ident), [list(versions)]

    def checked(self, conn: Connection, write: tuple[sql.Composed, list[Any]], expected: int = 1) -> sql.Composed:
        """A write with its parameters inlined, that makes the server raise :data:`WRITE_CHECK` when it changes
        another number of rows than ``expected``.

        Sent in one round trip with the COMMIT that follows it, so the check must fail inside the transaction:
        the error keeps the COMMIT from running, and the migration is rolled back with its row.
        """
        inlined = psycopg.ClientCursor(conn).mogrify(*write)
        return sql.SQL(
            "WITH changed AS ({} RETURNING 1) SELECT CASE count(*) WHEN {} THEN 0 "
            "ELSE ({} || count(*) || {})::integer END FROM changed"
        ).format(sql.SQL(inlined), expected, f"{WRITE_CHECK} ", f" rows instead of {expected}")

    def writes_are_exact(self, conn: Connection) -> bool:
        """Whether a write of a row always happens: true unless a trigger or a rule on the history table may
        swallow it (looked up once per run; see :meth:`checked`)."""
        row = conn.execute(
            "SELECT NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = to_regclass(%(t)s) AND NOT tgisinternal) "
            "AND NOT EXISTS (SELECT FROM pg_rewrite WHERE ev_class = to_regclass(%(t)s))",
            {"t": self.ident.as_string(conn)},
        ).fetchone()
        return bool(row and row[0])

    def write_failure(self, conn: Connection, version: str, error: psycopg.Error) -> HistoryError:
        """What to tell the user when a (checked) write of the history was refused by the server."""
        message = str(error)
        if WRITE_CHECK not in message:
            return self.write_error(conn, version, error)
        detail = message[message.index(WRITE_CHECK) + len(WRITE_CHECK) :].split('"')[0].strip()
        return HistoryError(
            f"Writing the history row of version '{version}' in '{self.display}' changed {detail}; another "
            "process may be editing the history table by hand. Nothing was applied; check it and run again.",
            version=version,
        )

    def _update(self, conn: Connection, version: str, assignments: sql.Composable, params: list[Any]) -> None:
        query = sql.SQL("UPDATE {} SET {} WHERE version = %s").format(self.ident, assignments)
        cur = self._write(conn, version, query, [*params, version])
        self.check_one(cur.rowcount, version)

    def _write(
        self, conn: Connection, version: str, query: sql.Composed, params: Sequence[Any]
    ) -> psycopg.Cursor[Any]:
        """Run one write of a history row; a refusal by the server becomes a HistoryError that says what to do."""
        try:
            return conn.execute(query, params)
        except (psycopg.errors.LockNotAvailable, psycopg.OperationalError):
            raise  # retried by the runner, or a lost connection reported by it
        except psycopg.Error as exc:
            raise self.write_error(conn, version, exc) from exc

    def write_error(self, conn: Connection, version: str, error: psycopg.Error) -> HistoryError:
        """What to tell the user when the server refused a write of a history row."""
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if error.sqlstate == "42501":
            role = conn.info.parameter_status("session_authorization") or "the migration role"
            fix = (
                f"Grant the role that runs migrations ('{role}', or PGMIG_ROLE) INSERT, UPDATE and DELETE on "
                f"'{self.display}', or run migrations as its owner (PGMIG_DATABASE_URL / PGMIG_ROLE)."
            )
        else:
            fix = "Fix the history table (its constraints, triggers or privileges) and run the command again."
        return HistoryError(
            f"Could not write the history row of migration '{version}' to '{self.display}' (SQLSTATE "
            f"{error.sqlstate}: {text}). A migration that runs in one transaction was rolled back with its row; "
            f"the statements a transaction:false one committed stay, and its row keeps its last state. {fix}",
            version=version,
        )

    def check_one(self, rowcount: int, version: str, expected: int = 1) -> None:
        """Refuse a write that changed another number of rows than it should have."""
        if rowcount != expected:
            raise HistoryError(
                f"Writing the history row of version '{version}' in '{self.display}' changed {rowcount} rows "
                f"instead of {expected}; another process may be editing the history table by hand. Check it and "
                "run again.",
                version=version,
            )


def _sections(migration: MigrationFile) -> tuple[str, str | None, str]:
    down = migration.down
    if down is None:
        return migration.up.sql, None, ""
    options = down.options
    words = []
    if not options.transaction:
        words.append("transaction:false")
    if options.lock_timeout_ms is not None:
        words.append(f"lock_timeout:{options.lock_timeout_ms}ms")
    if options.statement_timeout_ms is not None:
        words.append(f"statement_timeout:{options.statement_timeout_ms}ms")
    down_sql = down.sql if migration.kind == "sql" else migration.source
    return migration.up.sql, down_sql, " ".join(words)


def _host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
