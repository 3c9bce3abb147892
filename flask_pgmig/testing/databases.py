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

Per test, :meth:`TemplateDatabases.clone` clones the template, or hands out a *spare* cloned ahead of need
while the previous test ran (see :mod:`.pool`); :meth:`TemplateDatabases.drop` queues the drop on a thread of
its own (:mod:`.worker`), so the next test does not wait for it.

Spares are made only while tests hold their database at least as long as a clone takes (the last test's
time, against the last clone made when asked): for short tests, cloning when asked measured faster overall
(the spare's clone and its sync to disk compete with the drops and the next test; see ``docs/testing.rst``).

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
from .janitor import drop_orphans, drop_template, in_use_error, project_lock, terminate_sessions
from .pool import SPARE_STRATEGY, SPARES, SparePool, clone_statement
from .worker import BackgroundWorker, drop_database

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
    :param spares: how many clones to keep ready ahead of need when spares are made.
    :param ahead: make spares always (True), never (False), or while tests hold their database at least as
        long as a clone takes (None, the default).
    :param strategy: the spares' ``CREATE DATABASE ... STRATEGY`` on PostgreSQL 15 and later (``"FILE_COPY"``,
        ``"WAL_LOG"``), or None for the server's default; older servers always copy files.
    """

    def __init__(
        self,
        server_url: str,
        settings: Settings,
        *,
        events: Events | None = None,
        lock_wait: float = 600.0,
        spares: int = SPARES,
        ahead: bool | None = None,
        strategy: str | None = SPARE_STRATEGY,
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
        self.spares = spares
        self.ahead = ahead
        self.strategy = strategy
        self._conn: Connection | None = None
        self._numbers = itertools.count(1)
        self._created: list[str] = []
        self._cleaned = False
        # Not named like a maintenance connection: the janitor must not count these as live sessions.
        self._cloner = BackgroundWorker(server_url, f"{naming.APPLICATION_PREFIX}-clone {self.session}")
        self._dropper = BackgroundWorker(server_url, f"{naming.APPLICATION_PREFIX}-drop {self.session}")
        self._pool: SparePool | None = None

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
        """A new database cloned from the migrated template; returns its URL.

        It is the spare cloned ahead of need (waiting for it if it is still being made) when there is one from
        the template as it is now; then, if spares are wanted (see ``ahead``), the next spare is queued.
        """
        info, oid = self._current_template()
        pool = self._spare_pool()
        name = pool.take(oid)
        if name is None:
            started = time.perf_counter()
            name = self._create(info.name)
            pool.cloned_when_asked(time.perf_counter() - started)
        else:
            self._created.append(name)
        if pool.wanted(self.ahead):
            pool.fill(info.name, oid)
        pool.handed_out(name)
        return self.url(name)

    def _current_template(self) -> tuple[TemplateInfo, int]:
        """The prepared template and its oid; one dropped since this session prepared it is built again."""
        query = "SELECT oid FROM pg_database WHERE datname = %s AND datistemplate"
        info = self.prepare()
        row = self.connection().execute(query, [info.name]).fetchone()
        if row is None:  # dropped by hand, or by a session that took this one for dead: build it again
            self.info = None
            info = self.prepare()
            row = self.connection().execute(query, [info.name]).fetchone()
            if row is None:
                raise ConfigError(
                    f"The test template '{info.name}' disappeared right after it was built. Check that no "
                    "other job drops pgmig_tpl_* databases while the tests run, then run them again."
                )
        return info, int(row[0])

    def _spare_pool(self) -> SparePool:
        if self._pool is None:
            # STRATEGY exists from PostgreSQL 15 on; older servers always copy files.
            modern = self.connection().info.server_version >= 150000
            strategy = self.strategy if modern else None
            self._pool = SparePool(self._cloner, self.spares, self._new_name, strategy)
        return self._pool

    def _new_name(self) -> str:
        return naming.clone_name(self.session, next(self._numbers))

    def empty(self) -> str:
        """A new empty database (from ``template0``), for tests that run migrations themselves."""
        if not self._cleaned:  # a suite that only uses empty databases cleans up after killed runs too
            conn = self.connection()
            with project_lock(conn, self.project, self.lock_wait, self.template_name):
                drop_orphans(conn, self.project, keep=self.template_name)
            self._cleaned = True
        return self.url(self._create("template0"))

    def _create(self, template: str) -> str:
        name = self._new_name()
        query = clone_statement(name, template, None)
        for attempt in range(1, CLONE_ATTEMPTS + 1):
            try:
                self.connection().execute(query)
                break
            except psycopg.errors.ObjectInUse:
                # PostgreSQL already waited 5 s for the template's sessions to go. Ours may be a build
                # connection that outlived the build: end those (never anyone else's) and try again.
                conn = self.connection()
                if attempt == CLONE_ATTEMPTS or not terminate_sessions(conn, template, self.build_name):
                    raise in_use_error(conn, template) from None
                time.sleep(0.05 * attempt)
        self._created.append(name)
        return name

    def drop(self, url: str, *, wait: bool = False) -> None:
        """Drop a database this object created, disconnecting whoever is still connected to it.

        By default the drop is queued on the background worker (the next test need not wait for it);
        :meth:`close` waits for every drop. ``wait=True`` drops it now.
        """
        name = naming.dbname_of(url)
        if name in self._created:
            self._created.remove(name)
        if self._pool is not None:
            self._pool.given_back(name)
        if wait:
            self._drop_now(name)
        else:
            self._dropper.drop(name)

    def _drop_now(self, name: str) -> None:
        drop_database(self.connection(), name)

    def settle(self) -> None:
        """Wait until the spares queued so far are made and the drops queued so far are done."""
        self._cloner.wait()
        self._dropper.wait()

    def close(self) -> None:
        """Drop the spares, finish the queued drops and what is left of this session's databases; disconnect.

        The template stays, for the next session to reuse.
        """
        try:
            if self._pool is not None:
                self._pool.discard()
            for name in self._cloner.close() + self._dropper.close() + self._created:
                self._drop_now(name)
            self._created.clear()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


__all__ = ["TemplateDatabases", "TemplateInfo"]
