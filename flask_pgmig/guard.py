"""The startup guard (PGMIG_GUARD): refuse to boot, or log a warning, while the database is behind its migrations.

It is read-only and cheap: one scan of the migrations directory, one connection, one query (a second one only
when the database is not up to date); no lock, no DDL, no SET ROLE, and the history table is not created. A file
that is byte for byte the one applied (its raw SHA-256 is in its history row) is not parsed: see
:mod:`flask_pgmig.core.quick_status`. The guard is skipped when the flask CLI is loading the app to run the
extension's own group (``flask db migrate`` must be able to fix what the guard complains about). Never imports
the CLI.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import psycopg

from .core import plan as planning
from .core.dsn import connect, redact, redact_url
from .core.files import list_directory
from .core.history import HistoryTable
from .core.migrator import Settings
from .core.plan import HistoryRecord, MigrationState, Status
from .core.quick_status import digests_of, parse_all, quick_status, read_all, unchanged_since_applied
from .errors import ConnectionFailed, HistoryError, PendingMigrationsError, PgMigError

if TYPE_CHECKING:
    from .extension import PgMigState

GUARD_CONNECT_TIMEOUT = 5  # seconds: an unreachable database must not hold up boot for long
PROBLEM_STATES = (planning.PENDING, planning.MODIFIED, planning.MISSING, planning.FAILED, planning.RUNNING)
VOUCH_COLUMNS = ("version", "status", "file_sha256")  # enough to know that nothing needs to be said
NAMED_PER_STATE = 5  # migrations named per state in the guard's message

VouchRows = list[tuple[str, str, str | None]] | None
Opened = tuple[psycopg.Connection[Any], VouchRows]


def read_status(dsn: str, settings: Settings) -> Status:
    """Files joined with the history, from one connection and one query (a missing history table: all pending)."""
    status = _read(dsn, settings, vouch=False)
    assert status is not None  # only a vouched-for read returns None
    return status


def _read(dsn: str, settings: Settings, *, vouch: bool) -> Status | None:
    """The status; with ``vouch``, None instead when the history vouches for every file by its raw hash.

    Vouching needs one query of three columns and builds nothing, which is what keeps the guard cheap on every
    boot of an up-to-date app; when it cannot vouch, the full status is read on the same connection. The server
    starts its backend and runs that query while this thread reads and hashes the files: at 1000 migrations each
    takes a few milliseconds, and the guard runs on every boot.
    """
    listed = list_directory(settings.directory, init_hint=f"{settings.command} init")
    history = HistoryTable(settings.schema, settings.table)
    opening = _InBackground(lambda: _connect_and_vouch(dsn, settings, history, vouch))
    try:
        raws = read_all(listed)
        conn, rows = opening.result()
        with conn:
            if rows is not None and unchanged_since_applied(listed, rows, digests_of(raws)):
                return None
            records = _read_history(conn, history)
    except PgMigError:
        opening.abandon()
        parse_all(listed)  # the database failed before any file was parsed: a broken file is still the error
        raise
    except BaseException:
        opening.abandon()
        raise
    return quick_status(listed, records, raws)


def _connect_and_vouch(dsn: str, settings: Settings, history: HistoryTable, vouch: bool) -> Opened:
    """A connection and, with ``vouch``, every history row's (version, status, file_sha256); None instead of
    the rows when there is no history yet, or one from before file_sha256 (the full read tells what is what)."""
    conn = connect(dsn, autocommit=True, connect_timeout=GUARD_CONNECT_TIMEOUT, **settings.connect_kwargs)
    if not vouch:
        return conn, None
    try:
        return conn, conn.execute(history.select_records(VOUCH_COLUMNS)).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        return conn, None
    except psycopg.Error as exc:
        failed = _history_failed(history, exc)
    except BaseException:
        conn.close()
        raise
    conn.close()
    raise failed  # outside the except block: the psycopg error stays out of __context__


def _read_history(conn: psycopg.Connection[Any], history: HistoryTable) -> list[HistoryRecord]:
    try:
        return history.read(conn)
    except psycopg.Error as exc:
        failed = _history_failed(history, exc)
    raise failed


def _history_failed(history: HistoryTable, exc: psycopg.Error) -> HistoryError:
    failure = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    return HistoryError(
        f"Reading the history table '{history.display}' failed: {failure}. Check that the app's database role "
        "may read it."
    )


class _InBackground:
    """``work()`` (opening a connection) running in a daemon thread from now on: :meth:`result` waits for it and
    returns what it returned or raises what it raised. A connection nobody will collect (:meth:`abandon`) is
    closed when it arrives."""

    def __init__(self, work: Callable[[], Opened]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._outcome: Opened | BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="pgmig-guard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        outcome: Opened | BaseException
        try:
            outcome = self._work()
        except BaseException as exc:  # handed to the caller by result()
            outcome = exc
        with self._lock:
            self._outcome = outcome
            abandoned = self._abandoned
        if abandoned and not isinstance(outcome, BaseException):
            outcome[0].close()

    def result(self) -> Opened:
        """What ``work()`` returned (after waiting for it), or its exception raised here."""
        self._thread.join()
        outcome = self._outcome
        assert outcome is not None  # the thread has ended, and it always sets it
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def abandon(self) -> None:
        """Close the connection, now or when it arrives, without waiting for it (closing twice is harmless: the
        caller's ``with`` may have closed it already)."""
        with self._lock:
            self._abandoned = True
            outcome = self._outcome
        if outcome is not None and not isinstance(outcome, BaseException):
            outcome[0].close()


def pending_error(
    status: Status, database: str, command: str, flag: str = ""
) -> PendingMigrationsError | None:
    """The guard's error for a status that is not clean (None when everything is applied and unchanged).

    ``flag`` is appended to every command it suggests (`` --bind NAME`` for a bind).
    """
    groups = {state: status.having(state) for state in PROBLEM_STATES}
    groups[planning.FAILED] += groups.pop(planning.RUNNING)
    found = {state: items for state, items in groups.items() if items}
    if not found:
        return None
    parts = [f"{len(items)} {state} ({_named(items)})" for state, items in found.items()]
    fixes = []
    if planning.FAILED in found:
        version = found[planning.FAILED][0].version
        fixes.append(
            f"resolve the failed one with '{command} migrate --resume{flag}' or '{command} repair{flag} "
            f"--mark-applied {version}' / '--mark-rolled-back {version}'"
        )
    if planning.MODIFIED in found:
        version = found[planning.MODIFIED][0].version
        fixes.append(
            f"restore the modified files or accept them with '{command} repair{flag} --accept-checksum {version}'"
        )
    if planning.MISSING in found:
        fixes.append("restore the missing files (or roll them back)")
    if planning.PENDING in found:
        fixes.append(f"run '{command} migrate{flag}'")
    message = (
        f"The database {database!r} is not up to date with its migrations: {'; '.join(parts)}. "
        f"Before starting the app, {', then '.join(fixes)} ('{command} status{flag}' shows the details)."
    )
    problems = [f"{state}: {m.id}" for state, items in found.items() for m in items]
    return PendingMigrationsError(message, problems=problems)


def _named(items: list[MigrationState]) -> str:
    """The first few migrations of one state by name; a new database's thousand pending ones would otherwise make
    a message (and a log line at every boot under 'warn') of tens of kilobytes. ``problems`` lists them all."""
    shown = ", ".join(repr(m.id) for m in items[:NAMED_PER_STATE])
    more = len(items) - NAMED_PER_STATE
    return f"{shown} and {more} more" if more > 0 else shown


def run_guard(state: PgMigState) -> None:
    """Check the database (and every bind of PGMIG_BINDS) at app creation: raise under 'error', log under 'warn'."""
    if state.guard == "off" or invoked_command() == state.extension.command:
        return
    states = [state]
    if state.config.get("PGMIG_BINDS") is not None:  # binds.py (and the fleet code it uses) only when needed
        from .binds import configured_binds

        states += [state.for_bind(key) for key in configured_binds(state.config) if key != state.bind]
    for checked in states:
        error = guard_error(checked, state.guard)
        if error is None:
            continue
        if state.guard == "error":
            raise error
        state.app.logger.warning("%s", redact(error.message))


def guard_error(state: PgMigState, mode: str) -> PgMigError | None:
    """What the guard has to say about one database: None when it is up to date."""
    flag = f" --bind {state.bind}" if state.bind and state.bind != state.config.get("PGMIG_BIND") else ""
    try:
        dsn = state.dsn()
        status = _read(dsn, state.settings, vouch=True)
        return None if status is None else pending_error(status, redact_url(dsn), state.command, flag)
    except ConnectionFailed as failed:
        return ConnectionFailed(
            f"{failed.message} The startup guard (PGMIG_GUARD = '{mode}') could not check the migrations; "
            "set PGMIG_GUARD = 'warn' to boot without the check.",
            sqlstate=failed.sqlstate,
        )
    except PgMigError as other:
        return other


def invoked_command() -> str | None:
    """The command the flask CLI is loading the app for (``db`` in ``flask db migrate``), else None.

    The flask CLI loads the app while it resolves the command name, before click records it, so the name is
    read from the click context when it is already known and otherwise from ``sys.argv`` with the flask
    group's own option parser (so ``flask --app db db migrate`` and ``--env-file x`` are read right).
    """
    from flask.cli import FlaskGroup

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return None
    root = ctx.find_root()
    if not isinstance(root.command, FlaskGroup):
        return None
    if root.invoked_subcommand:
        return root.invoked_subcommand
    try:
        parser = root.command.make_parser(root)
        _, rest, _ = parser.parse_args(list(sys.argv[1:]))
    except click.ClickException:  # sys.argv is not a flask command line (e.g. a test runner's)
        return None
    return str(rest[0]) if rest else None


__all__ = ["guard_error", "invoked_command", "pending_error", "read_status", "run_guard"]
