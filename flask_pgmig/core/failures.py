"""What went wrong on the server, in words: advice per SQLSTATE, and psycopg errors turned into PgMigErrors.

A migration can fail for reasons that have nothing to do with its SQL: the role lacks a privilege, live traffic
deadlocks with it, the server shuts down, the database is a read-only standby. Each gets a sentence that says
so and what to do, instead of "fix the SQL". Standard library and psycopg only.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..errors import ConfigError, ConnectionFailed, PermissionDenied, PgMigError

F = TypeVar("F", bound=Callable[..., Any])

#: SQLSTATEs (and classes) that mean the session is gone, with why.
CONNECTION_LOST = {
    "57P01": "the server is shutting down, or an administrator ended the session (pg_terminate_backend)",
    "57P02": "the server crashed or was stopped in immediate mode",
    "57P03": "the server is starting up or shutting down",
    "57P05": "the session was idle for longer than idle_session_timeout",
    "25P03": "the transaction was idle for longer than idle_in_transaction_session_timeout",
}
_OBJECT = re.compile(r"(?:permission denied for|must be owner of) (?P<kind>[a-z ]+?) (?P<name>\S+)\s*$")
_PERMISSION_TO = re.compile(r"permission denied to (?P<what>.+?)\s*$")


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (psycopg appends DETAIL/HINT lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def role_name(conn: psycopg.Connection[Any] | None, configured: str | None = None) -> str:
    """The role migrations run as: PGMIG_ROLE if set, else the session's login role (no round trip)."""
    if configured:
        return configured
    if conn is not None and not conn.closed:
        name = conn.info.parameter_status("session_authorization")
        if name:
            return name
    return "the connecting role"


def role_from_dsn(dsn: str, configured: str | None = None) -> str:
    """The role for messages when no connection is at hand: PGMIG_ROLE, else the DSN's user."""
    if configured:
        return configured
    try:
        user = conninfo_to_dict(dsn.replace("+psycopg2", "").replace("+psycopg", "")).get("user")
    except psycopg.Error:
        user = None
    return str(user) if user else "the connecting role"


def privilege_object(message: str) -> str:
    """``table 'users'`` from "permission denied for table users" / "must be owner of table users"."""
    match = _OBJECT.search(message)
    if match:
        return f"{match['kind']} '{match['name'].strip(chr(34))}'"
    match = _PERMISSION_TO.search(message)
    return f"the right to {match['what']}" if match else "an object the migration uses"


def privilege_fix(role: str, *, is_set_role: bool = False) -> str:
    """The fix for a missing privilege, naming the role (``is_set_role``: it is PGMIG_ROLE itself)."""
    if is_set_role:
        return (
            f"grant '{role}' (the PGMIG_ROLE migrations SET ROLE to) what it lacks, e.g. ownership of the "
            "object or CREATE on its schema or database, or set PGMIG_ROLE to the role that owns the schema's objects."
        )
    return (
        f"run migrations as a role that owns the schema's objects: point PGMIG_DATABASE_URL at a migration "
        f"role, or set PGMIG_ROLE to a role that '{role}' may SET ROLE to (GRANT that_role TO \"{role}\")."
    )


def advice(
    sqlstate: str | None,
    message: str,
    *,
    role: str,
    statement_timeout_ms: int | None = None,
    is_set_role: bool = False,
) -> str | None:
    """What to do about a failed migration statement when the cause is not its SQL; None when it is."""
    if sqlstate == "42501":
        fix = privilege_fix(role, is_set_role=is_set_role)
        return f"role '{role}' lacks the privilege on {privilege_object(message)}; {fix}"
    if sqlstate == "40P01":
        return (
            "PostgreSQL chose this migration as the victim of a deadlock with another session (the server log "
            "names it); run migrate again, at a quieter time if it recurs."
        )
    if sqlstate == "40001":
        return "a concurrent transaction conflicted with it (serialization failure); run migrate again."
    if sqlstate == "57014":
        if "statement timeout" in message:
            limit = f" ({statement_timeout_ms} ms)" if statement_timeout_ms else ""
            return (
                f"it ran longer than statement_timeout{limit}; raise PGMIG_STATEMENT_TIMEOUT, or give this "
                "file its own limit on its marker line (e.g. '-- migrate:up statement_timeout:2h')."
            )
        return "someone cancelled it (pg_cancel_backend, or Ctrl-C); run migrate again when that is resolved."
    if sqlstate == "25006":
        return (
            "the database is read-only (a standby, or default_transaction_read_only is on); point "
            "PGMIG_DATABASE_URL at the primary."
        )
    if sqlstate in ("53100", "53200"):
        return "the server ran out of disk space or memory; free some and run migrate again."
    return None


def lost_reason(exc: BaseException) -> str:
    """Why a connection went away, from its SQLSTATE, for messages."""
    sqlstate = getattr(exc, "sqlstate", None)
    reason = CONNECTION_LOST.get(sqlstate or "")
    if reason:
        return f"{reason} (SQLSTATE {sqlstate})"
    return f"the server or the network went away ({first_line(exc)})"


def is_connection_lost(exc: BaseException, conn: psycopg.Connection[Any] | None = None) -> bool:
    """True when ``exc`` means the session is gone (the server, the network, or a termination)."""
    if conn is not None and (conn.broken or conn.closed):
        return True
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate in CONNECTION_LOST or sqlstate.startswith("08"):
        return True
    return isinstance(exc, psycopg.OperationalError) and not sqlstate


def translate(
    exc: psycopg.Error, *, role: str, command: str, during: str, is_set_role: bool = False
) -> PgMigError:
    """A psycopg error that escaped the engine (history DDL, lock, reads) as a PgMigError sentence."""
    sqlstate = exc.sqlstate
    text = first_line(exc)
    if is_connection_lost(exc):
        return ConnectionFailed(
            f"The connection to PostgreSQL was lost during {during}: {lost_reason(exc)}. Once the server is "
            f"reachable, run '{command} status' to see what was recorded and follow what it says.",
            sqlstate=sqlstate,
        )
    if sqlstate == "42501":
        what = privilege_object(text)
        return PermissionDenied(
            f"Role '{role}' lacks a privilege needed for {during} on {what} (SQLSTATE 42501: {text}). To fix "
            f"it, {privilege_fix(role, is_set_role=is_set_role)}",
            role=role,
            target=what,
        )
    if sqlstate == "25006":
        return ConfigError(
            f"The database refused {during} because it is read-only (SQLSTATE 25006: {text}). Point "
            "PGMIG_DATABASE_URL at the primary."
        )
    tail = advice(sqlstate, text, role=role, is_set_role=is_set_role)
    fix = tail[:1].upper() + tail[1:] if tail else "Check the server log, then run the command again."
    return PgMigError(f"PostgreSQL refused {during} (SQLSTATE {sqlstate or 'none'}: {text}). {fix}")


def translating(during: str) -> Callable[[F], F]:
    """Decorate a Migrator method so a psycopg error escaping it becomes one PgMigError sentence.

    The Migrator must have ``dsn`` and ``settings`` (with ``role`` and ``command``).
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except psycopg.Error as exc:
                role = role_from_dsn(self.dsn, self.settings.role)
                raise translate(
                    exc, role=role, command=self.settings.command, during=during,
                    is_set_role=bool(self.settings.role),
                ) from exc  # fmt: skip

        return cast(F, wrapper)

    return decorate


__all__ = [
    "advice",
    "first_line",
    "is_connection_lost",
    "lost_reason",
    "privilege_fix",
    "privilege_object",
    "role_from_dsn",
    "role_name",
    "translate",
    "translating",
]
