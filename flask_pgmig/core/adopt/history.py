"""``import --adopt-history``: read the source tool's tracking table and record the same migrations as applied.

Each tool's table says what ran in its own way: dbmate lists versions; golang-migrate keeps one version and a
``dirty`` flag; sqlx has a ``success`` column; goose appends apply/rollback rows; Flyway has ranks, types,
baselines and ``success``; diesel lists versions; Alembic keeps the heads of the revision graph. A dirty or
failed state is refused (the database is in an unknown state), and so is a recorded id the source directory
does not have (the directory does not match the database).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ...errors import HistoryError
from ..baseline import hold_lock, record_as_applied
from . import flyway
from .convert import Conversion
from .model import SourceSet

if TYPE_CHECKING:
    from ..migrator import Migrator

Connection = psycopg.Connection[Any]

TABLES = {
    "dbmate": "schema_migrations",
    "golang-migrate": "schema_migrations",
    "sqlx": "_sqlx_migrations",
    "goose": "goose_db_version",
    "flyway": "flyway_schema_history",
    "diesel": "__diesel_schema_migrations",
    "alembic": "alembic_version",
}


@dataclass(frozen=True)
class SourceHistory:
    """The source ids the source tool recorded as applied, and the table it was read from."""

    table: str
    applied: frozenset[str]


@dataclass(frozen=True)
class AdoptResult:
    """Versions recorded as applied by the adoption, those already recorded, and the table read."""

    table: str
    recorded: tuple[str, ...]
    unchanged: tuple[str, ...]


def read_source_history(conn: Connection, source: SourceSet, table: str | None = None) -> SourceHistory:
    """What the source tool applied, as source ids of ``source``; refuses dirty, failed or foreign states."""
    name = table or TABLES[source.tool]
    ident = sql.Identifier(*name.split(".", 1))
    row = conn.execute("SELECT to_regclass(%s)::text", [ident.as_string(conn)]).fetchone()
    if row is None or row[0] is None:
        raise HistoryError(
            f"The database has no '{name}' table, so there is no {source.tool} history to adopt. Check the "
            "database URL (and --source-table if the tool used another table), or import without "
            "--adopt-history and use 'baseline'."
        )
    reader = READERS[source.tool]
    applied = reader(conn, ident, name, source)
    known = {m.source_id for m in source.migrations}
    unknown = sorted(applied - known)
    if unknown:
        raise HistoryError(
            f"'{name}' records {', '.join(repr(u) for u in unknown[:10])} as applied, but '{source.root}' has no "
            f"such {source.tool} migration. Import the migrations directory that matches this database (the "
            "same branch and release), then try again."
        )
    return SourceHistory(name, frozenset(applied))


def adopt(migrator: Migrator, conversion: Conversion, history: SourceHistory) -> AdoptResult:
    """Record, under the lock and in one transaction, the converted migrations the source tool had applied."""
    files = {f.version: f for f in migrator.files()}
    chosen = [files[c.version] for c in conversion.migrations if c.source.source_id in history.applied]
    detail = {
        "from": conversion.tool,
        "source_table": history.table,
        "source_ids": sorted(history.applied),
        "import_point": conversion.import_point,
    }
    with migrator.connect() as conn, hold_lock(migrator, conn):
        recorded, unchanged = record_as_applied(
            migrator, conn, chosen, action="import", detail=detail, force=False
        )
    return AdoptResult(history.table, tuple(recorded), tuple(unchanged))


def _rows(conn: Connection, query: str, ident: sql.Identifier) -> list[tuple[Any, ...]]:
    return conn.execute(sql.SQL(query).format(ident)).fetchall()


def _columns(conn: Connection, ident: sql.Identifier) -> set[str]:
    rows = conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        [ident.as_string(conn)],
    ).fetchall()
    return {str(r[0]) for r in rows}


def _schema_migrations(conn: Connection, ident: sql.Identifier, name: str, source: SourceSet) -> set[str]:
    """dbmate (one row per version) or golang-migrate (one row: the current version and ``dirty``)."""
    if "dirty" not in _columns(conn, ident):
        return {str(r[0]) for r in _rows(conn, "SELECT version::text FROM {}", ident)}
    rows = _rows(conn, "SELECT version::bigint, dirty FROM {}", ident)
    if not rows:
        return set()
    version, dirty = rows[0]
    if dirty:
        raise HistoryError(
            f"'{name}' says version {version} is dirty: a golang-migrate migration failed halfway and the "
            "database is in an unknown state. Repair the schema by hand, run 'migrate force <version>' with "
            "golang-migrate to clear the flag, then import again."
        )
    return {m.source_id for m in source.migrations if m.source_id.isdigit() and int(m.source_id) <= version}


def _sqlx(conn: Connection, ident: sql.Identifier, name: str, source: SourceSet) -> set[str]:
    rows = _rows(conn, "SELECT version::text, success FROM {} ORDER BY version", ident)
    failed = [v for v, ok in rows if not ok]
    if failed:
        raise HistoryError(
            f"'{name}' records version {failed[0]} as failed (success = false): the database is in an unknown "
            "state. Repair it by hand and delete that row (or rerun it with sqlx), then import again."
        )
    return {str(v) for v, _ in rows}


def _goose(conn: Connection, ident: sql.Identifier, name: str, source: SourceSet) -> set[str]:
    state: dict[int, bool] = {}
    for version, applied in _rows(conn, "SELECT version_id, is_applied FROM {} ORDER BY id", ident):
        state[int(version)] = bool(applied)  # the newest row of a version wins: goose appends on rollback
    return {str(v) for v, applied in state.items() if applied and v != 0}


def _flyway(conn: Connection, ident: sql.Identifier, name: str, source: SourceSet) -> set[str]:
    applied: set[tuple[int, ...]] = set()
    scripts: set[str] = set()
    baseline: tuple[int, ...] | None = None
    query = "SELECT version, type, script, success FROM {} ORDER BY installed_rank"
    for version, kind, script, success in _rows(conn, query, ident):
        if not success:
            raise HistoryError(
                f"'{name}' records a failed Flyway migration ({script}, version {version}): the database is "
                "in an unknown state. Repair the schema, run 'flyway repair', then import again."
            )
        if version is None:
            scripts.add(str(script).rsplit("/", 1)[-1])
        elif kind == "BASELINE":
            baseline = flyway.version_key(str(version))
        elif kind in ("UNDO_SQL", "UNDO_JDBC", "DELETE"):
            applied.discard(flyway.version_key(str(version)))
        elif kind != "SCHEMA":
            applied.add(flyway.version_key(str(version)))
    result: set[str] = set()
    for migration in source.migrations:
        if migration.source_id.startswith("R__"):
            if migration.files[0].rsplit("/", 1)[-1] in scripts:
                result.add(migration.source_id)
            continue
        key = flyway.version_key(migration.source_id)
        if key in applied or (baseline is not None and key <= baseline):
            result.add(migration.source_id)
    known = {flyway.version_key(m.source_id) for m in source.migrations if not m.source_id.startswith("R__")}
    result |= {".".join(map(str, key)) for key in applied - known}  # reported as unknown by the caller
    return result


def _diesel(conn: Connection, ident: sql.Identifier, name: str, source: SourceSet) -> set[str]:
    return {str(r[0]).replace("-", "") for r in _rows(conn, "SELECT version::text FROM {}", ident)}


def _alembic(conn: Connection, ident: sql.Identifier, name: str, source: SourceSet) -> set[str]:
    heads = {str(r[0]) for r in _rows(conn, "SELECT version_num FROM {}", ident)}
    by_id = source.by_id()
    unknown = heads - set(by_id)
    if unknown:
        return unknown  # reported by the caller with the directory named
    applied: set[str] = set()
    todo = list(heads)
    while todo:  # every ancestor of a recorded head was applied
        revision = todo.pop()
        if revision not in applied:
            applied.add(revision)
            todo.extend(by_id[revision].parents)
    return applied


READERS: dict[str, Callable[[Connection, sql.Identifier, str, SourceSet], set[str]]] = {
    "dbmate": _schema_migrations,
    "golang-migrate": _schema_migrations,
    "sqlx": _sqlx,
    "goose": _goose,
    "flyway": _flyway,
    "diesel": _diesel,
    "alembic": _alembic,
}
