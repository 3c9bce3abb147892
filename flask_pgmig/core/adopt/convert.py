"""Turn a :class:`~.model.SourceSet` into our migration files, and write them.

Versions become 14 digits in exactly the source order: the source's own numbers, zero-padded, when they are
integers that fit and already increase in that order (timestamps stay readable), else 1, 2, 3, ... zero-padded.
Each file starts with a comment naming the source files and identifier; non-transactional sources get
``transaction:false`` (also when a statement cannot run in a transaction, which Flyway and golang-migrate
allowed); a BEGIN ... COMMIT around a whole file is removed (each migration already runs in a transaction);
templating is reported and written into the file as a warning comment.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from ... import __version__
from ...errors import MigrationFileError, MigrationParseError
from .. import sql as pgsql
from ..files import FILE_NAME, is_blank_sql, parse_sections
from .model import NOTE, WARNING, Finding, SourceMigration, SourceSection, SourceSet
from .templating import find_templating

MAX_VERSION = 10**14


@dataclass(frozen=True)
class Converted:
    """One source migration as our file: its version, name, full text and what the user must know."""

    source: SourceMigration
    version: str
    name: str
    text: str
    findings: tuple[Finding, ...]
    transactional: bool = True

    @property
    def file_name(self) -> str:
        """``<version>_<name>.sql``."""
        return f"{self.version}_{self.name}.sql"


@dataclass(frozen=True)
class Conversion:
    """A whole converted source set, in order, and where the import stops (the import point)."""

    tool: str
    root: Path
    migrations: tuple[Converted, ...]
    findings: tuple[Finding, ...]
    ignored: tuple[str, ...]
    import_point: str

    def by_source_id(self) -> dict[str, Converted]:
        """Converted migrations by the source tool's identifier."""
        return {c.source.source_id: c for c in self.migrations}


def map_versions(source_ids: list[str]) -> list[str]:
    """14-digit versions for source identifiers given in the source order; the order is kept exactly."""
    if all(i.isdigit() for i in source_ids):
        numbers = [int(i) for i in source_ids]
        if all(n < MAX_VERSION for n in numbers) and all(a < b for a, b in pairwise(numbers)):
            return [f"{n:014d}" for n in numbers]
    return [f"{n:014d}" for n in range(1, len(source_ids) + 1)]


def convert(source: SourceSet) -> Conversion:
    """Every migration of ``source`` as our file text, validated with our own parser."""
    versions = map_versions([m.source_id for m in source.migrations])
    point = ", ".join(source.heads) if source.heads else source.migrations[-1].source_id
    converted = []
    for index, (migration, version) in enumerate(zip(source.migrations, versions, strict=True)):
        last = index == len(versions) - 1
        converted.append(_convert_one(source.tool, migration, version, point if last else None))
    return Conversion(source.tool, source.root, tuple(converted), source.findings, source.ignored, point)


def _convert_one(tool: str, migration: SourceMigration, version: str, point: str | None) -> Converted:
    findings = list(migration.findings)
    up_sql, up_options = _section(tool, migration.up, findings)
    if migration.down is None:
        down_sql, down_options = "-- The source has no down migration: rollback refuses this one.\n", ""
    else:
        down_sql, down_options = _section(tool, migration.down, findings)
        if is_blank_sql(down_sql) and not is_blank_sql(up_sql):
            message = f"the down section is empty: rollback refuses this migration ({tool} ran it as a no-op)"
            findings.append(Finding(message, migration.down.file, migration.down.line, NOTE))
    header = [f"-- Imported from {tool} by flask-pgmig {__version__}: {', '.join(migration.files)}"]
    header.append(f"-- {tool} id: {migration.source_id}")
    if point is not None:
        header.append(f"-- Import point: the last migration imported from {tool} ({point}).")
    header += [f"-- WARNING: {f.where}: {f.message}" for f in findings if f.level == WARNING]
    # ASCII only above the up marker: core/files.py finds markers by byte offset (non-ASCII shifts them)
    text = "\n".join(line.encode("ascii", "backslashreplace").decode("ascii") for line in header) + "\n"
    text += f"-- migrate:up{up_options}\n{up_sql}"
    text += f"-- migrate:down{down_options}\n{down_sql}"
    name = migration.name if FILE_NAME.match(f"{version}_{migration.name}.sql") else "migration"
    converted = Converted(migration, version, name, text, tuple(findings), transactional=not up_options)
    _read_back(converted, up_sql)
    return converted


def _read_back(converted: Converted, up_sql: str) -> None:
    """Our own parser must accept the file and find exactly the up section written (never run a down as up)."""
    up, _ = parse_sections(converted.text, converted.file_name, converted.file_name)
    if up.sql != up_sql:
        raise MigrationParseError(
            f"The converted file '{converted.file_name}' (from {', '.join(converted.source.files)}) does not read "
            "back as written: flask-pgmig's parser finds another up section (its '-- migrate:down' line is not "
            "recognized, often because of non-ASCII text above it). Nothing was written. Report this, and "
            "convert that migration by hand.",
            path=converted.file_name,
        )


def _section(tool: str, section: SourceSection, findings: list[Finding]) -> tuple[str, str]:
    """The SQL to write and its marker options, with findings for what changed."""
    text = section.sql
    transaction = section.transaction
    statements = _statements(text)
    if transaction:
        text, stripped = _strip_enclosing_transaction(text, statements)
        if stripped:
            findings.append(
                Finding("removed the BEGIN/COMMIT around the file", section.file, section.line, NOTE)
            )
            statements = _statements(text)
        reason = next((r for r in map(_non_transactional, statements) if r), None)
        if reason is not None:
            transaction = False
            findings.append(
                Finding(
                    f"{reason} cannot run in a transaction: transaction:false",
                    section.file,
                    section.line,
                    NOTE,
                )
            )
        for statement in statements:
            control = pgsql.transaction_control(statement)
            if transaction and control:
                findings.append(
                    Finding(
                        f"'{control}' inside the migration: remove it (each migration runs in its own "
                        "transaction)",
                        section.file,
                        section.line + statement.line - 1,
                    )
                )
    findings += find_templating(section, tool)
    if text and not text.endswith("\n"):
        text += "\n"
    return text, "" if transaction else " transaction:false"


def _statements(text: str) -> list[pgsql.Statement]:
    try:
        return pgsql.split_statements(text)
    except Exception:  # pglast cannot read it (psql meta-commands): reported by the templating check
        return []


def _non_transactional(statement: pgsql.Statement) -> str | None:
    try:
        return pgsql.non_transactional_reason(statement)
    except Exception:
        return None


def _strip_enclosing_transaction(text: str, statements: list[pgsql.Statement]) -> tuple[str, bool]:
    """Blank a BEGIN first and COMMIT last (keeping line numbers) when no other transaction control is there."""
    controls = [pgsql.transaction_control(s) for s in statements]
    if len(statements) < 2 or controls[0] != "BEGIN" or controls[-1] != "COMMIT" or any(controls[1:-1]):
        return text, False
    for statement in (statements[-1], statements[0]):
        end = text.find(";", statement.start + len(statement.text))
        end = len(text) if end < 0 else end + 1
        text = (
            text[: statement.start]
            + "".join(c if c == "\n" else " " for c in text[statement.start : end])
            + (text[end:])
        )
    return text, True


@dataclass(frozen=True)
class WriteResult:
    """Files written, and files already there with the same content (a repeated import)."""

    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]


def write(conversion: Conversion, directory: Path) -> WriteResult:
    """Write every converted file into ``directory``; refuse to overwrite a different file or version."""
    directory.mkdir(parents=True, exist_ok=True)
    existing: dict[str, Path] = {}
    for path in directory.iterdir():
        match = FILE_NAME.match(path.name)
        if match is not None:
            existing[match["version"]] = path
    clashes = []
    for item in conversion.migrations:
        found = existing.get(item.version)
        if found is not None and (
            found.name != item.file_name or found.read_bytes() != item.text.encode("utf-8")
        ):
            clashes.append(found)
    if clashes:
        listed = ", ".join(f"'{p.name}'" for p in clashes)
        raise MigrationFileError(
            f"The migrations directory '{directory}' already has different files with the versions this import "
            f"writes: {listed}. Import into an empty directory (--directory / PGMIG_DIRECTORY), or move those "
            "files away first.",
            paths=[str(p) for p in clashes],
        )
    written, unchanged = [], []
    for item in conversion.migrations:
        path = directory / item.file_name
        if item.version in existing:
            unchanged.append(path)
            continue
        path.write_bytes(item.text.encode("utf-8"))
        written.append(path)
    return WriteResult(tuple(written), tuple(unchanged))
