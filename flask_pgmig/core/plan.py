"""Compare migration files with the history table: :class:`Status`, and the plans for migrate and rollback.

Pure: takes parsed files and history rows, returns values or raises a named :mod:`flask_pgmig.errors` error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path

from ..errors import (
    ChecksumMismatch,
    ConfigError,
    FailedMigration,
    IrreversibleMigration,
    MissingMigration,
    OutOfOrder,
)
from .files import MigrationFile, Section, parse_options, version_key

APPLIED, PENDING, MODIFIED, MISSING, FAILED, RUNNING = (
    "applied",
    "pending",
    "modified",
    "missing",
    "failed",
    "running",
)


@dataclass(frozen=True)
class HistoryRecord:
    """One row of the history table, as read back (``up_sql`` is fetched only when needed)."""

    version: str
    name: str
    checksum: str
    status: str
    applied_at: datetime | None = None
    duration_ms: int | None = None
    down_sql: str | None = None
    down_options: str = ""
    statements_done: int | None = None
    statements_total: int | None = None
    error: str | None = None
    kind: str = "sql"
    file_sha256: str | None = None  # None for rows written before the column existed

    @property
    def key(self) -> int:
        """The version as a sortable number."""
        return version_key(self.version)

    @property
    def id(self) -> str:
        """``<version>_<name>``."""
        return f"{self.version}_{self.name}"


@dataclass(frozen=True)
class MigrationState:
    """One migration as ``status`` shows it: its file, its history row, and what they say together."""

    version: str
    name: str
    state: str
    file: MigrationFile | None
    record: HistoryRecord | None
    change: str | None = None  # for "modified": "cosmetic" (whitespace/comments only) or "sql"; None if unknown

    @property
    def key(self) -> int:
        """The version as a sortable number."""
        return version_key(self.version)

    @property
    def id(self) -> str:
        """``<version>_<name>``."""
        return f"{self.version}_{self.name}"


@dataclass(frozen=True)
class InvalidIndex:
    """An index PostgreSQL marks INVALID (pg_index.indisvalid), e.g. left by a failed CREATE INDEX CONCURRENTLY."""

    schema: str
    name: str
    table: str
    version: str | None = None  # the migration whose CREATE INDEX names it, when one does


@dataclass(frozen=True)
class Status:
    """Every migration known from the files or the history, in version order."""

    migrations: tuple[MigrationState, ...]
    invalid_indexes: tuple[InvalidIndex, ...] = ()  # filled by Migrator.status(), not by compute_status()

    def having(self, *states: str) -> list[MigrationState]:
        """The migrations in any of the given states."""
        return [m for m in self.migrations if m.state in states]

    @property
    def pending(self) -> list[MigrationState]:
        """Files not yet applied."""
        return self.having(PENDING)

    @property
    def newest_applied(self) -> MigrationState | None:
        """The applied (or modified/missing) migration with the highest version."""
        done = self.having(APPLIED, MODIFIED, MISSING)
        return done[-1] if done else None

    @property
    def out_of_order(self) -> list[MigrationState]:
        """Pending migrations older than the newest applied one (typically from a merged branch)."""
        newest = self.newest_applied
        return [m for m in self.pending if newest is not None and m.key < newest.key]

    @property
    def problems(self) -> list[MigrationState]:
        """Everything that is not cleanly applied."""
        return [m for m in self.migrations if m.state != APPLIED]

    @property
    def clean(self) -> bool:
        """True when every file is applied unchanged and nothing failed or went missing."""
        return not self.problems


def compute_status(files: Sequence[MigrationFile], records: Sequence[HistoryRecord]) -> Status:
    """Join files and history rows by version (numerically, so 20260115 and 20260115000000 are one)."""
    by_key = {f.key: f for f in files}
    keyed: list[tuple[int, MigrationState]] = []  # each version's key computed once (status runs on every boot)
    for record in records:
        key = record.key
        file = by_key.pop(key, None)
        if record.status in (FAILED, RUNNING):
            state = record.status
        elif file is None:
            state = MISSING
        elif file.checksum != record.checksum:
            state = MODIFIED
        else:
            state = APPLIED
        keyed.append((key, MigrationState(record.version, record.name, state, file, record)))
    keyed.extend((key, MigrationState(f.version, f.name, PENDING, f, None)) for key, f in by_key.items())
    keyed.sort(key=itemgetter(0))  # stable: rows in history order, then new files, as sorting the states by key
    return Status(tuple(state for _, state in keyed))


def validate(status: Status, *, allow_out_of_order: bool, command: str = "flask db") -> None:
    """Refuse to run anything while the history disagrees with the files (sqlx: one named error each)."""
    for m in status.having(FAILED, RUNNING):
        raise failed_error(m, command)
    for m in status.having(MODIFIED):
        assert m.file is not None
        if m.change == "cosmetic":
            raise ChecksumMismatch(
                f"Migration '{m.id}' was applied but its file has changed since (checksum mismatch); the change "
                "is cosmetic (only whitespace or comments). Restore the file, or run "
                f"'{command} repair --accept-checksum {m.version}' to accept it.",
                version=m.version,
            )
        raise ChecksumMismatch(
            f"Migration '{m.id}' was applied but its file has changed since (checksum mismatch). Restore the "
            f"file, or run '{command} repair --accept-checksum {m.version}' if the change is only cosmetic.",
            version=m.version,
        )
    if not allow_out_of_order and status.out_of_order:
        first = status.out_of_order[0]
        newest = status.newest_applied
        assert newest is not None
        raise OutOfOrder(
            f"Migration '{first.id}' is pending but older than '{newest.id}', which is already applied "
            "(usually a merged branch). Give it a newer version, or run with '--allow-out-of-order' "
            "(PGMIG_OUT_OF_ORDER = True) if it does not depend on the newer ones.",
            version=first.version,
            newest_applied=newest.version,
        )


def failed_error(m: MigrationState, command: str) -> FailedMigration:
    """The error for a migration left failed (or interrupted while running) by an earlier run."""
    record = m.record
    assert record is not None
    done = record.statements_done or 0
    total = record.statements_total
    progress = f"{done} of {total} statements completed" if total else f"{done} statements completed"
    what = "failed" if m.state == FAILED else "was interrupted (the process or connection died)"
    reason = f": {record.error}" if record.error and m.state == FAILED else ""
    return FailedMigration(
        f"Migration '{m.id}' {what} in an earlier run ({progress}){reason}. Check the database, then run "
        f"'{command} migrate --resume' to continue from the next statement, or '{command} repair --mark-applied "
        f"{m.version}' / '{command} repair --mark-rolled-back {m.version}' to record what you did by hand.",
        version=m.version,
    )


def find(status: Status, version: str) -> MigrationState:
    """The migration with that version (8- or 14-digit), or a ConfigError naming the known range."""
    if not version.isdigit() or len(version) not in (8, 14):
        raise ConfigError(
            f"'{version}' is not a migration version. Give 14 digits (YYYYMMDDHHMMSS) or 8 digits."
        )
    key = version_key(version)
    for m in status.migrations:
        if m.key == key:
            return m
    raise ConfigError(f"No migration has version '{version}'. Run 'status' to list the versions.")


def plan_migrate(status: Status, *, to: str | None = None) -> list[MigrationFile]:
    """Pending files in version order, up to and including ``to``."""
    limit = find(status, to).key if to else None
    plan = [m.file for m in status.pending if m.file is not None and (limit is None or m.key <= limit)]
    return plan


@dataclass(frozen=True)
class RollbackStep:
    """One migration to revert: its down section, from the file or from the history's stored source."""

    version: str
    name: str
    down: Section
    from_stored_source: bool
    path: Path | None

    @property
    def id(self) -> str:
        """``<version>_<name>``."""
        return f"{self.version}_{self.name}"

    @property
    def display(self) -> str:
        """How messages name where the SQL came from."""
        return self.path.name if self.path else f"{self.id} (stored down section)"


def plan_rollback(
    status: Status,
    *,
    steps: int | None = 1,
    to: str | None = None,
    everything: bool = False,
    command: str = "flask db",
) -> list[RollbackStep]:
    """Applied migrations to revert, newest first: the newest ``steps``, all after ``to``, or all."""
    for m in status.having(FAILED, RUNNING):
        raise failed_error(m, command)
    applied = [m for m in status.having(APPLIED, MODIFIED, MISSING)]
    applied.reverse()
    if everything:
        chosen = applied
    elif to is not None:
        limit = find(status, to).key
        chosen = [m for m in applied if m.key > limit]
    else:
        if steps is None or steps < 1:
            raise ConfigError(f"--steps must be 1 or more, not {steps}.")
        chosen = applied[:steps]
    return [_rollback_step(m, command) for m in chosen]


def _rollback_step(m: MigrationState, command: str) -> RollbackStep:
    if m.state == MODIFIED:
        raise ChecksumMismatch(
            f"Migration '{m.id}' has changed since it was applied, so its down section may not match what ran. "
            f"Restore the file, or run '{command} repair --accept-checksum {m.version}' first.",
            version=m.version,
        )
    if m.file is not None:
        if m.file.down is None:
            raise IrreversibleMigration(
                f"Migration '{m.id}' has no down section, so it cannot be rolled back. Write a '-- migrate:down' "
                f"section in '{m.file.path.name}' (and run '{command} repair --accept-checksum {m.version}'), "
                "or revert it by hand.",
                version=m.version,
            )
        return RollbackStep(m.version, m.name, m.file.down, False, m.file.path)
    record = m.record
    assert record is not None
    if record.down_sql is None:
        raise IrreversibleMigration(
            f"Migration '{m.id}' is applied but its file is gone and no down section was stored with it. "
            "Restore the file or revert it by hand.",
            version=m.version,
        )
    if record.kind == "py":
        raise MissingMigration(
            f"Migration '{m.id}' is a Python migration whose file is gone; its down() cannot run without it. "
            "Restore the file (for example from version control) and roll back again.",
            version=m.version,
        )
    options = parse_options(record.down_options, path=m.id, display=m.id, line=1)
    return RollbackStep(m.version, m.name, Section(record.down_sql, 1, options), True, None)


def sql_fingerprint(sql: str) -> str | None:
    """The SQL's tokens without comments and whitespace, to tell a cosmetic edit from a real one."""
    from .sql import scan_tokens  # pglast: only when an edit is to be told apart, not for every status

    tokens = scan_tokens(sql)
    if tokens is None:
        return None
    return "\x1f".join(sql[t.start : t.end + 1] for t in tokens if t.name not in ("SQL_COMMENT", "C_COMMENT"))
