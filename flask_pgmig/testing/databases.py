"""Template databases for tests: migrate once, clone per test with ``CREATE DATABASE ... TEMPLATE``.

One :class:`TemplateDatabases` per pytest process (each xdist worker has its own). It keeps one *maintenance
connection* to the server URL it is given, whose ``application_name`` advertises the session and the template
it uses (see :mod:`.naming`); sessions look at ``pg_stat_activity`` to tell live sessions from dead ones,
which works across databases and roles, unlike advisory locks.

Under an advisory lock per project (taken on the maintenance database, so every session of the project must
use the same server URL), the first session to need the template:

1. drops the per-test databases of sessions that are gone (killed runs leave them behind),
2. drops this project's templates that no live session uses (the migrations changed since they were built),
3. reuses the template if it is complete (``datistemplate``), else builds it: ``CREATE DATABASE`` from
   ``template0``, the Migrator runs every migration, then ``IS_TEMPLATE true ALLOW_CONNECTIONS false`` marks
   it complete and keeps connections (which would block cloning) out.

Standard library, psycopg and the engine only: usable outside pytest too.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from ..core import dsn as dsn_module
from ..core.events import Events
from ..core.migrator import Migrator, Settings
from ..errors import ConfigError
from . import naming
from .dropper import BackgroundDropper
from .janitor import drop_orphans, drop_template, project_lock

Connection = psycopg.Connection[Any]

#: Tries of CREATE DATABASE ... TEMPLATE when the template is in use (each waits up to 5 s server-side).
CLONE_ATTEMPTS = 3


@dataclass(frozen=True)
class TemplateInfo:
    """The template a session uses: its name, and whether this session built it (and how long it took)."""

    name: str
    built: bool
    build_ms: int | None
    migrations: int


class TemplateDatabases:
    """Creates migrated (cloned) and empty databases for tests on one server, and drops them.

    :param server_url: a database URL on the server (``postgres`` usually); the role needs CREATEDB.
    :param settings: the engine settings; ``settings.directory`` is the migrations directory.
    :param lock_wait: how long to wait, in seconds, for another session that is building the template.
    """

    def __init__(
        self, server_url: str, settings: Settings, *, events: Events | None = None, lock_wait: float = 600.0
    ) -> None:
        self.server_url = server_url
        self.settings = settings
        self.events = events or Events()
        self.lock_wait = lock_wait
        self.session = secrets.token_hex(6)
        self.project = naming.project_key(settings.directory)
        self.template_name = naming.template_name(
            self.project, naming.fingerprint(settings.directory, settings)
        )
        #: application_name of the connections that build the template (see :meth:`_create`).
        self.build_name = f"{naming.APPLICATION_PREFIX}-build {self.session}"
        self.info: TemplateInfo | None = None
        self._conn: Connection | None = None
        self._numbers = itertools.count(1)
        self._created: list[str] = []
        self._cleaned = False
        self._dropper = BackgroundDropper(server_url, f"{naming.APPLICATION_PREFIX}-drop {self.session}")

    # -- the maintenance connection --------------------------------------------------------------------------
    def connection(self) -> Connection:
        """The maintenance connection (opened on first use, reopened if it was lost)."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            app_name = naming.application_name(self.session, self.template_name)
            self._conn = dsn_module.connect(self.server_url, autocommit=True, application_name=app_name)
        return self._conn

    def server_version(self) -> str:
        """The server's version, e.g. ``"15.4"``."""
        row = self.connection().execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"

    def template_state(self) -> str:
        """``"ready"`` when a complete template exists on the server, else says it will be built (no lock)."""
        row = (
            self.connection()
            .execute("SELECT datistemplate FROM pg_database WHERE datname = %s", [self.template_name])
            .fetchone()
        )
        return "ready" if row is not None and row[0] else "built on first use"

    # -- the template ----------------------------------------------------------------------------------------
    def prepare(self) -> TemplateInfo:
        """Clean up after dead sessions, then reuse or build the template (once per session)."""
        if self.info is not None:
            return self.info
        conn = self.connection()
        with project_lock(conn, self.project, self.lock_wait, self.template_name):
            drop_orphans(conn, self.project, keep=self.template_name)
            self._cleaned = True
            self.info = self._ensure_template(conn)
        return self.info

    def _ensure_template(self, conn: Connection) -> TemplateInfo:
        row = conn.execute(
            "SELECT datistemplate FROM pg_database WHERE datname = %s", [self.template_name]
        ).fetchone()
        if row is not None and row[0]:
            return TemplateInfo(
                self.template_name, False, None, naming.migration_count(self.settings.directory)
            )
        if row is not None:
            drop_template(conn, self.template_name)  # a build that died before it was marked complete
        started = time.perf_counter()
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(self.template_name))
        )
        try:
            # The build's connections carry this session's name, so that a stale one can be told from others'.
            kwargs = {**self.settings.connect_kwargs, "application_name": self.build_name}
            settings = replace(self.settings, connect_kwargs=kwargs)
            result = Migrator(self.url(self.template_name), settings, events=self.events).migrate()
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                    sql.Identifier(self.template_name)
                )
            )
        except BaseException:
            drop_template(conn, self.template_name)
            raise
        duration = round((time.perf_counter() - started) * 1000)
        return TemplateInfo(self.template_name, True, duration, len(result.steps))

    # -- per-test databases ----------------------------------------------------------------------------------
    def url(self, dbname: str) -> str:
        """The URL of database ``dbname`` on this server."""
        return naming.url_with_dbname(self.server_url, dbname)

    def clone(self) -> str:
        """A new database cloned from the migrated template; returns its URL."""
        template = self.prepare().name
        return self._create(template)

    def empty(self) -> str:
        """A new empty database (from ``template0``), for tests that run migrations themselves."""
        if not self._cleaned:  # a suite that only uses empty databases cleans up after killed runs too
            conn = self.connection()
            with project_lock(conn, self.project, self.lock_wait, self.template_name):
                drop_orphans(conn, self.project, keep=self.template_name)
            self._cleaned = True
        return self._create("template0")

    def _create(self, template: str) -> str:
        name = naming.clone_name(self.session, next(self._numbers))
        query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
        for attempt in range(1, CLONE_ATTEMPTS + 1):
            try:
                self.connection().execute(query)
                break
            except psycopg.errors.ObjectInUse:
                # PostgreSQL already waited 5 s for the template's sessions to go. Ours may be a build
                # connection that outlived the build: end those (never anyone else's) and try again.
                if attempt == CLONE_ATTEMPTS or not self._terminate_own(template):
                    raise self._in_use(template) from None
                time.sleep(0.05 * attempt)
        self._created.append(name)
        return self.url(name)

    def _terminate_own(self, template: str) -> int:
        rows = (
            self.connection()
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                [template, self.build_name],
            )
            .fetchall()
        )
        return len(rows)

    def _in_use(self, template: str) -> ConfigError:
        rows = (
            self.connection()
            .execute(
                "SELECT pid, coalesce(application_name, ''), coalesce(usename, '') FROM pg_stat_activity "
                "WHERE datname = %s",
                [template],
            )
            .fetchall()
        )
        who = "; ".join(f"pid {pid}, application_name '{app}', user '{user}'" for pid, app, user in rows)
        return ConfigError(
            f"PostgreSQL cannot clone the test template '{template}' because other sessions are connected "
            f"to it ({who or 'they left just now'}). Close them (SELECT pg_terminate_backend(pid) for each), "
            "then run the tests again."
        )

    def drop(self, url: str, *, wait: bool = False) -> None:
        """Drop a database this object created, disconnecting whoever is still connected to it.

        By default the drop happens on a background thread (the next test need not wait for it);
        :meth:`close` waits for every drop. ``wait=True`` drops it now.
        """
        name = naming.dbname_of(url)
        if name in self._created:
            self._created.remove(name)
        if wait:
            self._drop_now(name)
        else:
            self._dropper.drop(name)

    def _drop_now(self, name: str) -> None:
        self.connection().execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def close(self) -> None:
        """Finish every drop, drop what is left of this session's databases, close the connections.

        The template stays, for the next session to reuse.
        """
        try:
            for name in self._dropper.close() + self._created:
                self._drop_now(name)
            self._created.clear()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


__all__ = ["TemplateDatabases", "TemplateInfo"]
