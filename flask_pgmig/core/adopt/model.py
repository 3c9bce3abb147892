"""What every importer produces: the source tool's migrations in the order that tool applies them.

An importer reads one directory in one tool's format and returns a :class:`SourceSet`. It changes nothing on
disk; :mod:`.convert` turns the set into our files. Pure: no database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import MigrationFileError, MigrationParseError

WARNING, NOTE = "warning", "note"


@dataclass(frozen=True)
class Finding:
    """Something the user must know about an imported migration: a ``warning`` (act on it) or a ``note``."""

    message: str
    file: str | None = None
    line: int | None = None
    level: str = WARNING

    @property
    def where(self) -> str:
        """``file:line`` (or just the file), for reports."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True)
class SourceSection:
    """One direction of a source migration: its SQL, where it starts in which source file, its mode."""

    sql: str
    file: str
    line: int = 1
    transaction: bool = True


@dataclass(frozen=True)
class SourceMigration:
    """One migration of the source tool, as that tool would run it.

    ``source_id`` is the identifier the source tool records in its tracking table (a version number, a Flyway
    version such as ``1.2``, an Alembic revision); ``down`` is None when the source has no down migration;
    ``parents`` are an Alembic revision's down revisions (two or more for a merge).
    """

    source_id: str
    name: str
    up: SourceSection
    down: SourceSection | None
    files: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    parents: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceSet:
    """Every migration of one source directory, in the order the source tool applies them."""

    tool: str
    root: Path
    migrations: tuple[SourceMigration, ...]
    ignored: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    heads: tuple[str, ...] = field(default=())  # Alembic: the heads of the revision graph

    def by_id(self) -> dict[str, SourceMigration]:
        """The migrations by source identifier."""
        return {m.source_id: m for m in self.migrations}


_LINE = re.compile(r"[^\n]*\n|[^\n]+$")


def lines(text: str) -> Iterator[tuple[int, int, str]]:
    """(1-based number, offset, line with its newline) for every line, split on '\\n' only.

    ``str.splitlines`` also splits on form feeds and U+2028 inside string literals, which would shift lines.
    """
    for number, match in enumerate(_LINE.finditer(text), start=1):
        yield number, match.start(), match.group()


def read_source_file(path: Path, root: Path) -> str:
    """A source file's text, exactly (line endings kept, a UTF-8 BOM dropped)."""
    display = relative(path, root)
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationParseError(
            f"Source migration '{display}' is not valid UTF-8 (byte {exc.start}). Convert it to UTF-8 and import "
            "again.",
            path=str(path),
        ) from None
    except OSError as exc:
        raise MigrationFileError(
            f"Could not read source migration '{display}': {exc.strerror}. Check its permissions.",
            paths=[str(path)],
        ) from None


def relative(path: Path, root: Path) -> str:
    """``path`` relative to the source directory, with '/' separators, for messages and headers."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def require_directory(root: Path, tool: str) -> None:
    """Refuse a source directory that does not exist."""
    if not root.is_dir():
        raise MigrationFileError(
            f"The {tool} migrations directory '{root}' does not exist. Give the folder that holds the {tool} "
            "migration files.",
            paths=[str(root)],
        )


def refuse_empty(root: Path, tool: str, migrations: list[SourceMigration], expected: str) -> None:
    """Refuse a directory in which the importer found nothing, naming what it looked for."""
    if not migrations:
        raise MigrationFileError(
            f"No {tool} migrations were found in '{root}' (looked for {expected}). Check the directory and the "
            "--from format.",
            paths=[str(root)],
        )


def refuse_duplicates(root: Path, tool: str, keyed: list[tuple[object, str]]) -> None:
    """Refuse two source files that the source tool would treat as the same version."""
    seen: dict[object, str] = {}
    for key, file in keyed:
        if key in seen:
            raise MigrationFileError(
                f"'{seen[key]}' and '{file}' in '{root}' have the same {tool} version, which {tool} itself "
                "refuses. Renumber one of them and import again.",
                paths=[str(root / seen[key]), str(root / file)],
            )
        seen[key] = file


_NOT_NAME = re.compile(r"[^\w-]+")


def slug(text: str, fallback: str = "migration", limit: int = 80) -> str:
    """A migration name from a description: letters (any script), digits, '_' and '-', NFC-normalized."""
    words = _NOT_NAME.sub("_", unicodedata.normalize("NFC", text)).strip("_-")
    return (words[:limit].rstrip("_-") or fallback) if words else fallback
