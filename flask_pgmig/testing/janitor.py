"""Cleaning up test databases: the per-project lock, live sessions, and dropping what dead sessions left.

Sessions advertise themselves through the ``application_name`` of their maintenance connection (see
:mod:`.naming`), so any session can tell, from ``pg_stat_activity``, which per-test databases belong to a
session that is gone (a killed run) and which templates no live session uses (the migrations changed since).
Only databases with this plugin's names are touched, and only the templates of one project.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ..core import dsn as dsn_module
from ..core.migrator import Settings
from ..errors import ConfigError, LockTimeout
from . import naming

Connection = psycopg.Connection[Any]

# High 32 bits of the advisory lock key: 'pgmt', distinct from the migration lock's 'pgmg'.
LOCK_CLASS = int.from_bytes(b"pgmt", "big")
LIVE_SESSIONS = "SELECT application_name FROM pg_stat_activity WHERE starts_with(application_name, %s)"
OUR_DATABASES = (
    "SELECT datname FROM pg_database WHERE starts_with(datname, %s) OR starts_with(datname, %s) ORDER BY 1"
)


@contextmanager
def project_lock(conn: Connection, project: str, wait: float, template: str) -> Iterator[None]:
    """Hold the project's advisory lock on the maintenance connection for a block (blocking, bounded wait)."""
    key = _lock_key(project)
    # Blocking is safe here, unlike for the migration lock: the waiter sits in the maintenance database, and
    # CREATE INDEX CONCURRENTLY in the template being built only waits for transactions in its own database.
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{round(wait * 1000)}ms")))
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", [key])
    except psycopg.errors.LockNotAvailable:
        raise LockTimeout(
            f"Another test session has been building the test template '{template}' for over {wait:g}s. "
            "Wait for it to finish, or end it (pg_stat_activity shows it with an application_name starting "
            "with 'pgmig-pytest')."
        ) from None
    finally:
        conn.execute("RESET lock_timeout")
    try:
        yield
    finally:
        if not (conn.closed or conn.broken):
            conn.execute("SELECT pg_advisory_unlock(%s)", [key])


def _lock_key(project: str) -> int:
    key = (LOCK_CLASS << 32) | zlib.crc32(project.encode())
    return key - (1 << 64) if key >= 1 << 63 else key


def live_sessions(conn: Connection) -> tuple[set[str], set[str]]:
    """Session ids and template suffixes advertised by the maintenance connections of live sessions."""
    sessions: set[str] = set()
    suffixes: set[str] = set()
    for (app_name,) in conn.execute(LIVE_SESSIONS, [naming.APPLICATION_PREFIX + " "]).fetchall():
        words = str(app_name).split()
        if len(words) == 3:
            sessions.add(words[1])
            suffixes.add(words[2])
    return sessions, suffixes


def drop_orphans(conn: Connection, project: str, *, keep: str | None = None) -> list[str]:
    """Drop per-test databases of dead sessions and this project's templates that no live session uses."""
    sessions, suffixes = live_sessions(conn)
    own_templates = naming.TEMPLATE_PREFIX + project + "_"
    dropped: list[str] = []
    for (name,) in conn.execute(OUR_DATABASES, [naming.CLONE_PREFIX, own_templates]).fetchall():
        match = naming.CLONE_NAME.match(name)
        if match is not None and match["session"] not in sessions:
            if _try_drop(conn, name, template=False):
                dropped.append(name)
        elif (
            name.startswith(own_templates)
            and name != keep
            and name.removeprefix(naming.TEMPLATE_PREFIX) not in suffixes
            and _try_drop(conn, name, template=True)
        ):
            dropped.append(name)
    return dropped


def _try_drop(conn: Connection, name: str, *, template: bool) -> bool:
    try:
        if template:
            drop_template(conn, name)
        else:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg.Error:
        return False  # another role's database, or dropped by someone else meanwhile: not ours to insist on
    return True


def drop_template(conn: Connection, name: str) -> None:
    """Drop a template database (PostgreSQL refuses to drop one still marked IS_TEMPLATE)."""
    ident = sql.Identifier(name)
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if exists is not None:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(ident))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def terminate_sessions(conn: Connection, dbname: str, application_name: str) -> int:
    """End the sessions connected to ``dbname`` under ``application_name`` (a session's own); how many."""
    rows = conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        [dbname, application_name],
    ).fetchall()
    return len(rows)


def in_use_error(conn: Connection, template: str) -> ConfigError:
    """The error for a template that cannot be cloned because others are connected to it, naming them."""
    rows = conn.execute(
        "SELECT pid, coalesce(application_name, ''), coalesce(usename, '') FROM pg_stat_activity "
        "WHERE datname = %s",
        [template],
    ).fetchall()
    who = "; ".join(f"pid {pid}, application_name '{app}', user '{user}'" for pid, app, user in rows)
    return ConfigError(
        f"PostgreSQL cannot clone the test template '{template}' because other sessions are connected "
        f"to it ({who or 'they left just now'}). Close them (SELECT pg_terminate_backend(pid) for each), "
        "then run the tests again."
    )


def drop_templates(server_url: str, settings: Settings, *, lock_wait: float = 600.0) -> list[str]:
    """Drop every template of the project of ``settings.directory`` that no live session uses.

    Templates persist between test runs on purpose; call this (or drop ``pgmig_tpl_*`` databases by hand) to
    reclaim the space, e.g. when a project is moved or deleted. Returns the names dropped.
    """
    project = naming.project_key(settings.directory)
    pattern = naming.TEMPLATE_PREFIX + project + "_*"
    with (
        dsn_module.connect(server_url, autocommit=True, application_name="pgmig-cleanup") as conn,
        project_lock(conn, project, lock_wait, pattern),
    ):
        return [n for n in drop_orphans(conn, project) if n.startswith(naming.TEMPLATE_PREFIX)]


__all__ = [
    "drop_orphans",
    "drop_template",
    "drop_templates",
    "in_use_error",
    "live_sessions",
    "project_lock",
    "terminate_sessions",
]
