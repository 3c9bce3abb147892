"""Prove that every down section reverses its up: up -> snapshot -> down -> compare -> up again, in order.

Runs on a scratch database: one the caller names (it must be empty) or a temporary one that
:func:`scratch_database` creates on the same server and drops afterwards. The migrations are applied through
the :class:`~flask_pgmig.core.migrator.Migrator` itself, so they run exactly as ``migrate`` and ``rollback``
would run them (transaction modes, timeouts, history rows).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo

from ..errors import ConfigError, MigrationFailed, PgMigError
from . import dsn as dsn_module
from .events import Events
from .files import MigrationFile, discover
from .migrator import Migrator, Settings
from .snapshot import Change, Snapshot, changes, show, snapshot

Connection = psycopg.Connection[Any]
SCRATCH_PREFIX = "pgmig_verify_"


@dataclass
class VerifyReport:
    """What verify found: ``differences`` fail it; ``irreversible`` migrations fail it when ``strict``."""

    checked: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    irreversible: list[str] = field(default_factory=list)
    strict: bool = False

    @property
    def ok(self) -> bool:
        """True when every down reversed its up (and, with ``strict``, every migration has a down)."""
        return not self.differences and not (self.strict and self.irreversible)


@contextmanager
def scratch_database(server_dsn: str, connect_kwargs: dict[str, Any] | None = None) -> Iterator[str]:
    """Create an empty temporary database on the server of ``server_dsn``, yield its DSN, then drop it.

    ``connect_kwargs`` are extra connection parameters (e.g. a password the Flask engine passes separately).
    """
    name = SCRATCH_PREFIX + secrets.token_hex(6)
    extra = connect_kwargs or {}
    with dsn_module.connect(server_dsn, **extra) as admin:
        try:
            admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
        except psycopg.Error as exc:
            raise ConfigError(
                f"verify could not create a scratch database on "
                f"'{dsn_module.redact_url(server_dsn)}' ({exc.sqlstate}: {_first_line(exc)}). "
                "Grant the role CREATEDB, or pass an empty database with --database-url."
            ) from None
    try:
        yield make_conninfo(dsn_module.normalize_url(server_dsn), dbname=name)
    finally:
        with dsn_module.connect(server_dsn, **extra) as admin:
            admin.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(pgsql.Identifier(name)))


def verify_directory(
    dsn: str,
    settings: Settings,
    *,
    strict: bool = False,
    events: Events | None = None,
    require_empty: bool = True,
) -> VerifyReport:
    """Run every migration of ``settings.directory`` up, down and up again on the empty database ``dsn``.

    Each down must give back the schema of before its up, and the second up the schema of the first.
    Differences are sentences naming the migration; migrations without a down are listed as irreversible.
    ``require_empty=False`` skips the emptiness check, for a database just created by :func:`scratch_database`
    (it holds what the server's template1 holds).
    """
    events = events or Events()
    files = discover(settings.directory, init_hint=f"{settings.command} init")
    migrator = Migrator(dsn, replace(settings, out_of_order=False), events=events)
    exclude = [(settings.schema, settings.table + suffix) for suffix in ("", "_audit", "_backfill")]
    report = VerifyReport(strict=strict)
    with migrator.connect() as conn:
        if require_empty:
            _refuse_non_empty(conn, migrator, exclude)
        with conn.transaction():  # the history table is there before the first snapshot, so it is no diff
            migrator.history.ensure(conn)
        _Verifier(migrator, conn, exclude, report, events).run(files)
    return report


class _Verifier:
    """Runs the round trip of each migration, handing the last snapshot on (it is the next one's "before")."""

    def __init__(
        self,
        migrator: Migrator,
        conn: Connection,
        exclude: list[tuple[str, str]],
        report: VerifyReport,
        events: Events,
    ) -> None:
        self.migrator, self.conn, self.exclude = migrator, conn, exclude
        self.report, self.events = report, events

    def snap(self) -> Snapshot:
        return snapshot(self.conn, exclude=self.exclude)

    def run(self, files: list[MigrationFile]) -> None:
        current: Snapshot | None = self.snap()
        for migration in files:
            assert current is not None
            current = self.one(migration, current)
            if current is None:
                break

    def one(self, migration: MigrationFile, before: Snapshot) -> Snapshot | None:
        """Check one migration; return the schema it leaves, or None when the run cannot go on."""
        ident, report = migration.id, self.report
        self.events.notice(f"verify {ident}")
        if not _step(report, ident, "up", lambda: self.migrator.migrate(to=migration.version)):
            return None
        after_up = self.snap()
        if migration.down is None or migration.is_noop:
            if not migration.is_noop:
                report.irreversible.append(ident)
            return after_up
        if not _step(report, ident, "down", lambda: self.migrator.rollback(steps=1)):
            # a transactional down left nothing; a failed autocommit one leaves a 'failed' row that stops migrate
            return after_up if migration.down.options.transaction else None
        after_down = self.snap()
        report.differences += [f"{ident}: down {_left(change)}" for change in changes(before, after_down)]
        again = "up, run again after its down,"
        if not _step(report, ident, again, lambda: self.migrator.migrate(to=migration.version)):
            # Usually what the down left behind collides with the up. Go on from the schema as it is, recorded
            # as applied, so that one forgetful down does not hide the problems of the migrations after it.
            self.migrator.history.record_applied(self.conn, migration, 0)
            self.events.notice(f"{ident}: verify goes on with the schema its down section left")
            return after_down
        second = self.snap()
        report.differences += [
            f"{ident}: up run again after its down gives a different schema: {_second(change)}"
            for change in changes(after_up, second)
        ]
        report.checked.append(ident)
        return second


def _step(report: VerifyReport, ident: str, what: str, run: Any) -> bool:
    try:
        run()
    except MigrationFailed as error:
        cause = error.__cause__
        reason = (
            str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else error.message
        )
        where = (
            f"line {error.line} of '{Path(error.path).name}'" if error.line else f"'{Path(error.path).name}'"
        )
        report.differences.append(f"{ident}: {what} fails at {where} (SQLSTATE {error.sqlstate}): {reason}")
        return False
    except PgMigError as error:
        report.differences.append(f"{ident}: {what} fails: {error.message}")
        return False
    return True


def _left(change: Change) -> str:
    """What a down section did wrong, from a difference between before the up and after the down."""
    if change.change == "added":
        return f"leaves {change.kind} {change.name} behind"
    if change.change == "removed":
        return f"drops {change.kind} {change.name}, which existed before the up"
    label = change.field.replace("_", " ")
    return (
        f"leaves the {label} of {change.kind} {change.name} as {show(change.after)} "
        f"(before the up: {show(change.before)})"
    )


def _second(change: Change) -> str:
    if change.change in ("added", "removed"):
        return f"{change.kind} {change.name} {'appears' if change.change == 'added' else 'is missing'}"
    label = change.field.replace("_", " ")
    return f"{label} of {change.kind} {change.name} is {show(change.after)}, was {show(change.before)}"


def _refuse_non_empty(conn: Connection, migrator: Migrator, exclude: list[tuple[str, str]]) -> None:
    """verify applies and reverts every migration: never on a database that holds anything."""
    applied = migrator.history.read(conn) if migrator.history.exists(conn) else []
    objects = _user_objects(snapshot(conn, exclude=exclude))
    if applied or objects:
        what = f"{len(applied)} applied migration(s)" if applied else f"objects such as {objects[0]}"
        raise ConfigError(
            f"verify needs an empty scratch database, but '{conn.info.dbname}' has {what}. Pass an empty "
            "database with --database-url, or omit it to let verify create and drop a temporary one."
        )


def _user_objects(snap: Snapshot) -> list[str]:
    ignored = {"schema", "extension", "comment", "default privileges"}
    found = sorted((kind != "table", kind, name) for kind, name in snap.objects if kind not in ignored)
    return [f"{kind} {name}" for _, kind, name in found]  # tables first: they say the most


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = ["VerifyReport", "scratch_database", "verify_directory"]
