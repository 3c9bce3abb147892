"""The PostgreSQL side of the harness: fresh databases, a checkpoint before timing, counting what was made."""

from __future__ import annotations

import itertools
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from .generate import TABLE_PREFIX

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
RETIRED_PREFIX = "pgmig_bench_retired_"
_RETIRED_SERIAL = itertools.count(1)  # with the pid, a name no other Server of any process gives


class Server:
    """A PostgreSQL server reached with a superuser URL (the maintenance database is used for CREATE DATABASE)."""

    def __init__(self, url: str = DEFAULT_SERVER) -> None:
        self.url = url
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.password = parts.password

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, application_name="pgmig-bench")

    def url_for(self, database: str, scheme: str = "postgresql", query: str = "") -> str:
        """The URL of one database on this server with another scheme (postgresql+psycopg, postgres, db:pg)."""
        parts = urlsplit(self.url)
        return urlunsplit((scheme, parts.netloc, f"/{database}", query, ""))

    def version(self) -> str:
        """The server's version string."""
        with self._admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def setting(self, name: str) -> str:
        """The current value of a server setting."""
        with self._admin() as conn:
            row = conn.execute("SELECT current_setting(%s)", [name]).fetchone()
        return str(row[0]) if row else ""

    def alter_system(self, name: str, value: str) -> None:
        """ALTER SYSTEM SET name = value (takes effect at the next restart for settings like max_locks)."""
        with self._admin() as conn:
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))

    def fresh(self, database: str) -> None:
        """An empty database from template0 under this name; the one it replaces is dropped only afterwards.

        The order is for the measurements, not for correctness: on ext4 (seen on the 2-core VMs), a database
        created right after dropping one that held N tables' files ran the next apply two to three times slower
        (1000 tables with psql -1: 3.3 to 5.8 s against 1.0 to 1.3 s when created first), an artifact of the
        file system that moved every tool's time by seconds from one run to the next.
        """
        with self._admin() as conn:
            self._retire(conn, database)
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(database)))
            self._drop_retired(conn)

    def drop(self, database: str) -> None:
        """Take a database out of use now (renamed, so its name is free); its files go at the next
        :meth:`fresh` or :meth:`drop_retired`, once the next database exists (see :meth:`fresh`)."""
        with self._admin() as conn:
            self._retire(conn, database)

    def drop_retired(self, *, every_process: bool = False) -> None:
        """Drop the databases :meth:`drop` and :meth:`fresh` of this process took out of use; with
        ``every_process``, also other processes' (an interrupted run's: only on a server the run has to itself)."""
        with self._admin() as conn:
            self._drop_retired(conn, every_process=every_process)

    def _retire(self, conn: psycopg.Connection[Any], database: str) -> None:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            return
        # a tool's sessions are gone when it exits, but a backend may still be on its way out
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        )
        retired = f"{RETIRED_PREFIX}{os.getpid()}_{next(_RETIRED_SERIAL)}"
        conn.execute(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(database), sql.Identifier(retired)
            )
        )

    def _drop_retired(self, conn: psycopg.Connection[Any], *, every_process: bool = False) -> None:
        prefix = RETIRED_PREFIX if every_process else f"{RETIRED_PREFIX}{os.getpid()}_"
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [prefix]
        ).fetchall()
        for (name,) in rows:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def checkpoint(self) -> None:
        """Flush dirty buffers so that a checkpoint does not land in the middle of a timed run."""
        with self._admin() as conn:
            conn.execute("CHECKPOINT")

    def bench_tables(self, database: str) -> int:
        """How many benchmark tables exist in the database (the correctness check after each step)."""
        with psycopg.connect(self.url_for(database), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname LIKE %s",
                [TABLE_PREFIX + "%"],
            ).fetchone()
        return int(row[0]) if row else -1
