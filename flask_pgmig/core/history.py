"""The history table and the audit log: create them, read them, record what ran.

Every identifier is composed with :class:`psycopg.sql.Identifier`; every write checks its row count.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

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
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.execute(sql.SQL(HISTORY_DDL).format(table=self.ident, audit=self.audit_ident))
            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS file_sha256 text").format(self.ident))

    def read(self, conn: Connection) -> list[HistoryRecord]:
        """Every history row; an empty list when the table does not exist yet."""
        try:
            with conn.transaction():
                rows = conn.execute(self.select_records(RECORD_COLUMNS)).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        except psycopg.errors.UndefinedColumn:  # a history table from before the late columns: read the rest
            with conn.transaction():
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
        cur = self._write(conn, version, sql.SQL("DELETE FROM {} WHERE version = %s").format(self.ident), [version])
        self._check_one(cur.rowcount, version)

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
        query = sql.SQL(
            "INSERT INTO {} (version, name, kind, checksum, status, up_sql, down_sql, down_options, host, "
            "tool_version, duration_ms, statements_done, statements_total, error, file_sha256) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (version) DO UPDATE SET status = EXCLUDED.status, duration_ms = EXCLUDED.duration_ms, "
            "statements_done = EXCLUDED.statements_done, statements_total = EXCLUDED.statements_total, "
            "error = EXCLUDED.error, checksum = EXCLUDED.checksum, applied_at = now(), "
            # a resumed migration may have been edited after its completed prefix: store what now runs
            "name = EXCLUDED.name, kind = EXCLUDED.kind, up_sql = EXCLUDED.up_sql, down_sql = EXCLUDED.down_sql, "
            "down_options = EXCLUDED.down_options, file_sha256 = EXCLUDED.file_sha256"
        ).format(self.ident)
        down_sql, down_options = _sections(migration)[1:]
        cur = self._write(
            conn, migration.version, query,
            [
                migration.version, migration.name, migration.kind, migration.checksum, status, migration.up.sql,
                down_sql, down_options, _host(), __version__, duration_ms, done, total, error,
                migration.file_sha256 or None,
            ],
        )  # fmt: skip
        self._check_one(cur.rowcount, migration.version)

    def _update(self, conn: Connection, version: str, assignments: sql.Composable, params: list[Any]) -> None:
        query = sql.SQL("UPDATE {} SET {} WHERE version = %s").format(self.ident, assignments)
        cur = self._write(conn, version, query, [*params, version])
        self._check_one(cur.rowcount, version)

    def _write(
        self, conn: Connection, version: str, query: sql.Composed, params: Sequence[Any]
    ) -> psycopg.Cursor[Any]:
        """Run one write of a history row; a refusal by the server becomes a HistoryError that says what to do."""
        try:
            return conn.execute(query, params)
        except (psycopg.errors.LockNotAvailable, psycopg.OperationalError):
            raise  # retried by the runner, or a lost connection reported by it
        except psycopg.Error as exc:
            error = exc
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if error.sqlstate == "42501":
            role = conn.info.parameter_status("session_authorization") or "the migration role"
            fix = (
                f"Grant the role that runs migrations ('{role}', or PGMIG_ROLE) INSERT, UPDATE and DELETE on "
                f"'{self.display}', or run migrations as its owner (PGMIG_DATABASE_URL / PGMIG_ROLE)."
            )
        else:
            fix = "Fix the history table (its constraints, triggers or privileges) and run the command again."
        raise HistoryError(
            f"Could not write the history row of migration '{version}' to '{self.display}' (SQLSTATE "
            f"{error.sqlstate}: {text}). A migration that runs in one transaction was rolled back with its row; "
            f"the statements a transaction:false one committed stay, and its row keeps its last state. {fix}",
            version=version,
        ) from error

    def _check_one(self, rowcount: int, version: str) -> None:
        if rowcount != 1:
            raise HistoryError(
                f"Writing the history row of version '{version}' in '{self.display}' changed {rowcount} rows "
                "instead of 1; another process may be editing the history table by hand. Check it and run again.",
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
