"""The migration lock: a session-level advisory lock, taken by polling ``pg_try_advisory_lock``.

Polling rather than a blocking ``pg_advisory_lock`` matters: a blocked waiter sits in a transaction that
``CREATE INDEX CONCURRENTLY`` in the holder must wait for, and the two deadlock.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from ..errors import LockTimeout

Connection = psycopg.Connection[Any]

# High 32 bits of the bigint key: 'pgmg', so our locks are recognisable in pg_locks (classid).
LOCK_CLASS = int.from_bytes(b"pgmg", "big")

HOLDER_QUERY = """
SELECT a.pid, coalesce(nullif(a.application_name, ''), '?'), coalesce(host(a.client_addr), 'local socket'),
       a.backend_start, coalesce(a.usename, '?')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid AND l.objid = %s::oid AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def lock_key(database: str, schema: str, table: str) -> int:
    """A stable bigint key per database and history table: 'pgmg' << 32 | crc32."""
    crc = zlib.crc32(f"{database}\x00{schema}\x00{table}".encode())
    key = (LOCK_CLASS << 32) | crc
    return key - (1 << 64) if key >= 1 << 63 else key


def describe_holder(conn: Connection, key: int) -> str | None:
    """Who holds the lock, from pg_stat_activity: pid, application, client address, since when."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(HOLDER_QUERY, [unsigned >> 32, unsigned & 0xFFFFFFFF]).fetchone()
    if row is None:
        return None
    pid, app, addr, since, user = row
    return f"pid {pid} ({app}, role {user}, from {addr}, connected since {since:%Y-%m-%d %H:%M:%S %Z})"


@contextmanager
def migration_lock(
    conn: Connection,
    key: int,
    *,
    wait_seconds: float,
    on_wait: Callable[[str], None] | None = None,
    target: str = "this database",
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the advisory lock for the block; release it in ``finally`` even when the block fails.

    Polls with a growing interval (50 ms to 1 s) until ``wait_seconds`` have passed, then raises LockTimeout
    naming the holder. ``on_wait`` is told who holds it each time the holder changes.
    """
    deadline = time.monotonic() + wait_seconds
    interval = 0.05
    reported: str | None = None
    while not _try_lock(conn, key):
        holder = describe_holder(conn, key) or "another session (it may have just finished)"
        if on_wait is not None and holder != reported:
            on_wait(holder)
            reported = holder
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"Another migration run has held the migration lock on {target} for over {wait_seconds:g}s: "
                f"{holder}. Wait for it to finish, or raise PGMIG_LOCK_WAIT; if that session is stuck, end it "
                "with pg_terminate_backend(pid).",
                holder=holder,
            )
        sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 2, 1.0)
    try:
        yield
    finally:
        _unlock(conn, key)


def _try_lock(conn: Connection, key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
    return bool(row and row[0])


def _unlock(conn: Connection, key: int) -> None:
    if conn.closed or conn.broken:
        return  # the server released it with the session
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(%s)", [key])
    except psycopg.OperationalError:
        pass  # connection lost: the session and its lock are gone with it
