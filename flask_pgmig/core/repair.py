"""Recovering from failures: ``repair`` (mark applied, mark rolled back, accept a checksum) and what ``status``
needs to explain a problem (whether an edit is cosmetic, which indexes a failed build left INVALID).

Each repair runs under the migration lock, in one transaction with its audit-log entry.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg

from ..errors import ConfigError, HistoryError
from . import plan as planning
from . import sql
from .files import MigrationFile
from .history import HistoryTable
from .plan import InvalidIndex, MigrationState, Status

Connection = psycopg.Connection[Any]

MARK_APPLIED, MARK_ROLLED_BACK, ACCEPT_CHECKSUM = "mark-applied", "mark-rolled-back", "accept-checksum"
ACTIONS = (MARK_APPLIED, MARK_ROLLED_BACK, ACCEPT_CHECKSUM)

# An index being built right now is INVALID too; pg_stat_progress_create_index tells those apart.
INVALID_INDEXES = """
SELECT n.nspname, c.relname, t.relname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
  AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class RepairResult:
    """What a repair changed: the migration, its state before, and for accept-checksum what kind of edit."""

    action: str
    version: str
    name: str
    previous_state: str
    changed: bool = True
    change: str | None = None
    statements_done: int | None = None
    statements_total: int | None = None

    @property
    def id(self) -> str:
        """``<version>_<name>``."""
        return f"{self.version}_{self.name}"

    def as_dict(self) -> dict[str, Any]:
        """The documented ``repair --json`` document (also the audit entry's detail)."""
        return {
            "action": self.action,
            "version": self.version,
            "name": self.name,
            "previous_state": self.previous_state,
            "changed": self.changed,
            "change": self.change,
            "statements_done": self.statements_done,
            "statements_total": self.statements_total,
        }


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log: a migrate, rollback, repair or baseline run and how it ended."""

    id: int
    at: datetime
    action: str
    outcome: str
    versions: list[str]
    detail: dict[str, Any]
    role: str
    host: str | None
    pid: int

    def as_dict(self) -> dict[str, Any]:
        """The documented ``history --json`` entry."""
        return {
            "id": self.id, "at": self.at.isoformat(), "action": self.action, "outcome": self.outcome,
            "versions": list(self.versions), "detail": self.detail, "role": self.role, "host": self.host,
            "pid": self.pid,
        }  # fmt: skip


# -- explaining problems ---------------------------------------------------------------------------------------
def python_fingerprint(source: str) -> str | None:
    """A Python file's tokens without comments and blank lines (None when it does not tokenize)."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING}
    try:
        tokens = tokenize.generate_tokens(io.StringIO(source).readline)
        return "\x1f".join(f"{t.type}:{t.string}" for t in tokens if t.type not in skip)
    except (tokenize.TokenError, SyntaxError):
        return None


def change_kind(stored_up: str | None, file: MigrationFile) -> str:
    """'cosmetic' when the applied and the current up section differ only in whitespace or comments, else 'sql'."""
    if stored_up is None:
        return "sql"
    fingerprint = python_fingerprint if file.kind == "py" else planning.sql_fingerprint
    before, after = fingerprint(stored_up), fingerprint(file.up.sql)
    return "cosmetic" if before is not None and before == after else "sql"


def annotate_changes(conn: Connection, history: HistoryTable, status: Status) -> Status:
    """Tell each modified migration's edit apart: cosmetic or a real SQL change (one query per modified one)."""
    modified = status.having(planning.MODIFIED)
    if not modified:
        return status
    kinds: dict[str, str] = {}
    for m in modified:
        assert m.file is not None
        kinds[m.version] = change_kind(history.up_sql(conn, m.version), m.file)
    migrations = tuple(
        replace(m, change=kinds[m.version]) if m.version in kinds else m for m in status.migrations
    )
    return replace(status, migrations=migrations)


def invalid_indexes(conn: Connection, files: Sequence[MigrationFile]) -> tuple[InvalidIndex, ...]:
    """INVALID indexes in the database (not ones being built right now), each tied to its migration if any."""
    with conn.transaction():
        rows = conn.execute(INVALID_INDEXES).fetchall()
    if not rows:
        return ()
    creators = _index_creators(files)
    found = []
    for schema, name, table in rows:
        version = creators.get((schema, name)) or creators.get((None, name))
        found.append(InvalidIndex(schema, name, table, version))
    return tuple(found)


def _index_creators(files: Sequence[MigrationFile]) -> dict[tuple[str | None, str], str]:
    creators: dict[tuple[str | None, str], str] = {}
    for file in files:
        if file.kind != "sql":
            continue
        for statement in sql.split_statements(file.up.sql):
            target = sql.created_index_name(statement)
            if target is not None:
                creators.setdefault(target, file.version)
    return creators


def describe(conn: Connection, history: HistoryTable, status: Status, files: Sequence[MigrationFile]) -> Status:
    """The status with what ``status`` explains beyond states: cosmetic edits and INVALID indexes."""
    status = annotate_changes(conn, history, status)
    return replace(status, invalid_indexes=invalid_indexes(conn, files))


# -- repairing --------------------------------------------------------------------------------------------------
def repair(
    conn: Connection, history: HistoryTable, status: Status, action: str, version: str, *, command: str
) -> RepairResult:
    """Apply one repair to the history (in a transaction with its audit entry); call under the migration lock."""
    if action not in ACTIONS:
        raise ConfigError(f"'{action}' is not a repair; use one of {', '.join(ACTIONS)}.")
    m = planning.find(status, version)
    if action == MARK_APPLIED:
        result = _mark_applied(m, command)
    elif action == MARK_ROLLED_BACK:
        result = _mark_rolled_back(m, command)
    else:
        result = _accept_checksum(conn, history, m, command)
    if result.changed:
        with conn.transaction():
            _write(conn, history, result, m)
            history.audit(conn, "repair", "ok", [m.version], result.as_dict())
    return result


def _progress(m: MigrationState) -> tuple[int | None, int | None]:
    return (m.record.statements_done, m.record.statements_total) if m.record else (None, None)


def _mark_applied(m: MigrationState, command: str) -> RepairResult:
    if m.state not in (planning.FAILED, planning.RUNNING):
        raise _wrong_state(m, MARK_APPLIED, "failed or interrupted", command)
    return RepairResult(MARK_APPLIED, m.version, m.name, m.state, True, None, *_progress(m))


def _mark_rolled_back(m: MigrationState, command: str) -> RepairResult:
    if m.state == planning.PENDING:
        raise _wrong_state(m, MARK_ROLLED_BACK, "recorded in the history table", command)
    return RepairResult(MARK_ROLLED_BACK, m.version, m.name, m.state, True, None, *_progress(m))


def _accept_checksum(conn: Connection, history: HistoryTable, m: MigrationState, command: str) -> RepairResult:
    if m.state == planning.APPLIED:
        return RepairResult(ACCEPT_CHECKSUM, m.version, m.name, m.state, changed=False)
    if m.state != planning.MODIFIED or m.file is None:
        raise _wrong_state(m, ACCEPT_CHECKSUM, "applied with a changed file", command)
    change = m.change or change_kind(history.up_sql(conn, m.version), m.file)
    return RepairResult(ACCEPT_CHECKSUM, m.version, m.name, m.state, True, change)


def _write(conn: Connection, history: HistoryTable, result: RepairResult, m: MigrationState) -> None:
    if result.action == MARK_APPLIED:
        history.mark_applied(conn, m.version)
    elif result.action == MARK_ROLLED_BACK:
        history.delete(conn, m.version)
        # the user reverted it by hand: a backfill in it must start afresh when it is applied again
        from . import backfill  # only when repairing: status, which imports this module, never lexes SQL

        backfill.forget(conn, history, m.version)
    else:
        assert m.file is not None
        history.set_checksum(conn, m.file)


def _wrong_state(m: MigrationState, action: str, needed: str, command: str) -> HistoryError:
    hints = {
        planning.PENDING: f"it has not run yet; '{command} migrate' applies it",
        planning.APPLIED: "it is applied and its file is unchanged",
        planning.MODIFIED: f"its file changed since it was applied; see '{command} repair --accept-checksum'",
        planning.MISSING: f"its file is gone; '{command} rollback' can revert it from the stored down section",
        planning.FAILED: f"it failed; see '{command} repair --mark-applied' / '--mark-rolled-back'",
        planning.RUNNING: f"it was interrupted; see '{command} repair --mark-applied' / '--mark-rolled-back'",
    }
    return HistoryError(
        f"'{command} repair --{action} {m.version}' is for a migration that is {needed}, but '{m.id}' is "
        f"{m.state}: {hints.get(m.state, 'nothing to repair')}. Run '{command} status' to see every state.",
        version=m.version,
    )


__all__ = [
    "ACCEPT_CHECKSUM",
    "ACTIONS",
    "MARK_APPLIED",
    "MARK_ROLLED_BACK",
    "AuditEntry",
    "RepairResult",
    "annotate_changes",
    "change_kind",
    "describe",
    "invalid_indexes",
    "python_fingerprint",
    "repair",
]
