"""Baseline: adopt a database that already has its schema.

``baseline V`` records every migration up to V as applied without running it (checksums and sections stored,
so status, rollback and integrity checks work as if they had run), under the migration lock, in one
transaction, with an audit entry. It refuses when history exists unless forced. ``baseline --from-schema``
first writes the live schema (``pg_dump --schema-only``) into a first migration file and baselines that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.conninfo import make_conninfo

from ..errors import ConfigError, HistoryError, PgMigError
from .dsn import redact
from .files import FILE_NAME, MigrationFile, version_key
from .lock import lock_key, migration_lock

if TYPE_CHECKING:
    from .migrator import Migrator

Connection = psycopg.Connection[Any]
VERSION = re.compile(r"^(\d{14}|\d{8})$")
PG_DUMP_KEYWORDS = {
    "host", "hostaddr", "port", "dbname", "user", "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl",
    "options", "connect_timeout", "target_session_attrs", "gssencmode", "krbsrvname", "service", "passfile",
}  # fmt: skip
PG_DUMP_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


@dataclass(frozen=True)
class BaselineResult:
    """What a baseline recorded: the versions written as applied, those already recorded, the dump file."""

    version: str
    recorded: tuple[str, ...]
    unchanged: tuple[str, ...] = ()
    dump_file: Path | None = None


@contextmanager
def hold_lock(migrator: Migrator, conn: Connection) -> Iterator[None]:
    """The migration lock of this database and history table, as migrate and rollback take it."""
    database = conn.info.dbname
    with migration_lock(
        conn,
        lock_key(database, migrator.settings.schema, migrator.settings.table),
        wait_seconds=migrator.settings.lock_wait,
        on_wait=migrator.events.lock_waiting,
        target=f"database '{database}' ({migrator.history.display})",
    ):
        yield


def record_as_applied(
    migrator: Migrator,
    conn: Connection,
    migrations: Sequence[MigrationFile],
    *,
    action: str,
    detail: dict[str, Any],
    force: bool,
) -> tuple[list[str], list[str]]:
    """Record migrations as applied (call under the lock); returns (recorded, already recorded) versions.

    Without ``force`` a row that exists with another checksum or state is an error; with it, it is replaced.
    """
    history = migrator.history
    history.ensure(conn)
    existing = {record.version: record for record in history.read(conn)}
    recorded: list[str] = []
    unchanged: list[str] = []
    with conn.transaction():
        for migration in migrations:
            record = existing.get(migration.version)
            if record is not None and record.status == "applied" and record.checksum == migration.checksum:
                unchanged.append(migration.version)
                continue
            if record is not None and not force:
                raise HistoryError(
                    f"Migration '{migration.id}' is already in '{history.display}' as {record.status} with "
                    "another checksum, so it cannot be recorded again. Check it with "
                    f"'{migrator.settings.command} status', or add --force to overwrite its row.",
                    version=migration.version,
                )
            history.record_applied(conn, migration, 0)
            recorded.append(migration.version)
        history.audit(conn, action, "ok", recorded, {**detail, "already_recorded": unchanged})
    return recorded, unchanged


def baseline(migrator: Migrator, version: str, *, force: bool = False) -> BaselineResult:
    """Record every migration up to and including ``version`` as applied, without running it."""
    command = migrator.settings.command
    if VERSION.match(version) is None:
        raise ConfigError(
            f"'{version}' is not a migration version. Give the 14-digit (or 8-digit) version of the newest "
            f"migration the database already has, e.g. '{command} baseline 20260115093000'."
        )
    files = migrator.files()
    if version not in {f.version for f in files}:
        raise ConfigError(
            f"No migration in '{migrator.settings.directory}' has the version '{version}'. Give the version of "
            f"the newest migration the database already has (see '{command} status')."
        )
    chosen = [f for f in files if f.key <= version_key(version)]
    with migrator.connect() as conn, hold_lock(migrator, conn):
        records = migrator.history.read(conn)
        if records and not force:
            raise HistoryError(
                f"'{migrator.history.display}' already records {len(records)} migration(s), so this database "
                f"is not new to flask-pgmig and a baseline could hide real history. Check '{command} status'; "
                f"add --force to baseline anyway (rows of migrations up to {version} are replaced)."
            )
        try:
            recorded, unchanged = record_as_applied(
                migrator, conn, chosen, action="baseline", detail={"to": version, "force": force}, force=force
            )
        except PgMigError as error:
            _audit_failure(migrator, conn, "baseline", error)
            raise
    return BaselineResult(version, tuple(recorded), tuple(unchanged))


def _audit_failure(migrator: Migrator, conn: Connection, action: str, error: PgMigError) -> None:
    with suppress(psycopg.Error):  # the audit log must never hide the error being reported
        migrator.history.audit(conn, action, "failed", [], {"error": error.message})


# -- --from-schema -------------------------------------------------------------------------------------------
def baseline_from_schema(
    migrator: Migrator, *, version: str | None = None, pg_dump: str | None = None, force: bool = False
) -> BaselineResult:
    """Dump the live schema into a first migration file, then baseline it."""
    directory = migrator.settings.directory
    version = version or datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S")
    if VERSION.match(version) is None:
        raise ConfigError(f"'{version}' is not a migration version. Give 14 digits (YYYYMMDDHHMMSS).")
    if directory.is_dir() and any(FILE_NAME.match(p.name) for p in directory.iterdir()):
        raise ConfigError(
            f"The migrations directory '{directory}' already has migrations; --from-schema writes the first one. "
            f"Use '{migrator.settings.command} baseline VERSION' to adopt those, or start from an empty directory."
        )
    with migrator.connect() as conn:
        server_major = int(conn.info.server_version) // 10000
        program = find_pg_dump(pg_dump, server_major)
        schema_sql = run_pg_dump(program, conn, migrator)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{version}_baseline.sql"
    path.write_text(baseline_file(schema_sql, server_major, migrator.history.schema), encoding="utf-8")
    result = baseline(migrator, version, force=force)
    return BaselineResult(result.version, result.recorded, result.unchanged, dump_file=path)


def find_pg_dump(explicit: str | None, server_major: int) -> str:
    """The pg_dump to use: ``explicit``, else the server's major under /usr/lib/postgresql, else the PATH's."""
    candidates = [explicit] if explicit else [f"/usr/lib/postgresql/{server_major}/bin/pg_dump", "pg_dump"]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            break
    else:
        raise ConfigError(
            f"pg_dump was not found ({', '.join(c for c in candidates if c)}), and --from-schema needs it. "
            f"Install the PostgreSQL {server_major} client tools, or pass --pg-dump /path/to/pg_dump."
        )
    major = pg_dump_major(found)
    if major != server_major:
        raise ConfigError(
            f"pg_dump '{found}' is version {major} but the server is PostgreSQL {server_major}; a dump from "
            f"another major version may not restore here. Install the PostgreSQL {server_major} client tools, "
            "or pass --pg-dump with the path of a matching pg_dump."
        )
    return found


def pg_dump_major(program: str) -> int:
    """The major version ``pg_dump --version`` reports."""
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            f"Could not run '{program} --version': {exc}. Pass --pg-dump with a working pg_dump."
        ) from None
    match = PG_DUMP_VERSION.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise ConfigError(
            f"'{program} --version' did not report a PostgreSQL version ({done.stdout.strip() or 'no output'}). "
            "Pass --pg-dump with the path of PostgreSQL's pg_dump."
        )
    return int(match.group(1))


def run_pg_dump(program: str, conn: Connection, migrator: Migrator) -> str:
    """``pg_dump --schema-only`` of the connected database, without owners, privileges or our history tables."""
    # only long-standing keywords: the bundled libpq knows newer ones (sslcertmode) that an older pg_dump refuses
    params = {k: v for k, v in conn.info.get_parameters().items() if k in PG_DUMP_KEYWORDS}
    env = dict(os.environ)
    if conn.info.password:
        env["PGPASSWORD"] = conn.info.password  # never on the command line, where ps would show it
    history = migrator.history
    args = [program, "--schema-only", "--no-owner", "--no-privileges", "--quote-all-identifiers"]
    for table in (history.table, f"{history.table}_audit"):
        args += ["--exclude-table", f"{_pattern(history.schema)}.{_pattern(table)}"]
    if migrator.settings.role:
        args += ["--role", migrator.settings.role]
    args += ["--dbname", make_conninfo(**params)]
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            f"Could not run pg_dump '{program}': {exc}. Check the pg_dump installation."
        ) from None
    if done.returncode != 0:
        message = redact(done.stderr.strip() or f"exit status {done.returncode}")
        raise ConfigError(f"pg_dump failed: {message}. Fix the cause and run 'baseline --from-schema' again.")
    return done.stdout


def _pattern(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


SESSION_SET = re.compile(r"^SET (?!LOCAL )(\w+) = ", re.MULTILINE)
SEARCH_PATH = "SELECT pg_catalog.set_config('search_path', '', false);"


def baseline_file(schema_sql: str, server_major: int, history_schema: str = "public") -> str:
    """A migration file from a pg_dump script.

    psql meta-commands (``\\restrict`` in recent pg_dump) are dropped, and session settings become
    transaction-local so they end with this migration instead of leaking into the ones after it. The history
    table's own schema exists before any migration runs, so it is created only if missing.
    """
    kept = "".join(line for line in schema_sql.splitlines(keepends=True) if not line.startswith("\\"))
    kept = SESSION_SET.sub(r"SET LOCAL \1 = ", kept)
    kept = kept.replace(SEARCH_PATH, "SELECT pg_catalog.set_config('search_path', '', true);")
    own = _pattern(history_schema)
    kept = kept.replace(f"CREATE SCHEMA {own};", f"CREATE SCHEMA IF NOT EXISTS {own};")
    return (
        f"-- The schema of the database when it was adopted (pg_dump {server_major} --schema-only).\n"
        "-- migrate:up\n"
        f"{kept.rstrip()}\n\n"
        "-- migrate:down\n"
        "-- A baseline cannot be reverted: rollback refuses it.\n"
    )
