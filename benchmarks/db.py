"""The PostgreSQL side of the harness: fresh databases, a checkpoint before timing, counting what was made."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from .generate import TABLE_PREFIX

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


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
        """Drop (forcing out any session) and create an empty database from template0."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(database)))

    def drop(self, database: str) -> None:
        """Drop a database if it exists."""
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))

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
