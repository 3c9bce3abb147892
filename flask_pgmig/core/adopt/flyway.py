"""Flyway: ``V<version>__<description>.sql``, undo files ``U<version>__...``, repeatable ``R__...``.

Flyway scans sub-directories too, orders versions part by part as numbers (1.2 < 1.10; ``_`` is a ``.``; trailing
zero parts do not count, so 1.0 is 1), and records the version with dots in ``flyway_schema_history``. Repeatable
migrations run after every versioned one; here they become ordinary migrations at the end, with a warning.
A ``<file>.conf`` with ``executeInTransaction=false`` becomes ``transaction:false``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .model import (
    NOTE,
    WARNING,
    Finding,
    SourceMigration,
    SourceSection,
    SourceSet,
    read_source_file,
    refuse_duplicates,
    refuse_empty,
    relative,
    require_directory,
    slug,
)

FILE = re.compile(r"^(?P<prefix>[VUR])(?P<version>[0-9][0-9._]*)?__(?P<description>.*)\.sql$")
NO_TRANSACTION = re.compile(r"^\s*executeInTransaction\s*=\s*false\s*$", re.MULTILINE | re.IGNORECASE)


def version_key(version: str) -> tuple[int, ...]:
    """Flyway's order: numeric parts, trailing zeros ignored (``1.2.0`` == ``1.2`` < ``1.10``)."""
    parts = [int(part) for part in re.split(r"[._]", version) if part != ""]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def display_version(version: str) -> str:
    """The version as Flyway records it: underscores become dots."""
    return version.replace("_", ".")


def read(root: Path) -> SourceSet:
    """Every Flyway SQL migration under ``root`` (recursively), in Flyway's order."""
    require_directory(root, "Flyway")
    versioned: dict[tuple[int, ...], tuple[str, str, Path]] = {}
    undo: dict[tuple[int, ...], Path] = {}
    repeatable: list[tuple[str, Path]] = []
    keyed: list[tuple[object, str]] = []
    ignored: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        match = FILE.match(path.name)
        if match is None or (match["prefix"] != "R" and not match["version"]):
            if not path.name.endswith(".sql.conf"):
                ignored.append(relative(path, root))
            continue
        if match["prefix"] == "R":
            repeatable.append((match["description"], path))
            continue
        key = version_key(match["version"])
        keyed.append(((match["prefix"], key), relative(path, root)))
        if match["prefix"] == "U":
            undo[key] = path
        else:
            versioned[key] = (display_version(match["version"]), match["description"], path)
    refuse_duplicates(root, "Flyway", keyed)
    migrations = [_migration(root, *versioned[key], undo.get(key)) for key in sorted(versioned)]
    migrations += [_repeatable(root, description, path) for description, path in repeatable]
    refuse_empty(root, "Flyway", migrations, "'V<version>__<description>.sql' files")
    findings = tuple(
        Finding(f"undo file for version {key} has no versioned migration and was skipped", relative(p, root))
        for key, p in undo.items()
        if key not in versioned
    )
    return SourceSet("flyway", root, tuple(migrations), ignored=tuple(ignored), findings=findings)


def _section(root: Path, path: Path) -> SourceSection:
    conf = path.with_name(path.name + ".conf")
    transaction = not (conf.is_file() and NO_TRANSACTION.search(read_source_file(conf, root)))
    return SourceSection(read_source_file(path, root), relative(path, root), 1, transaction)


def _migration(root: Path, version: str, description: str, path: Path, undo: Path | None) -> SourceMigration:
    up = _section(root, path)
    findings = []
    if not up.transaction:
        findings.append(Finding("executeInTransaction=false in its .conf file", up.file, None, NOTE))
    down = _section(root, undo) if undo is not None else None
    files = (up.file,) + ((down.file,) if down else ())
    return SourceMigration(version, slug(description), up, down, files, tuple(findings))


def _repeatable(root: Path, description: str, path: Path) -> SourceMigration:
    message = (
        "a repeatable migration (R__) became an ordinary migration that runs once, after every versioned one; "
        "to change it later, write a new migration"
    )
    up = _section(root, path)
    return SourceMigration(
        f"R__{description}",
        slug(description),
        up,
        None,
        (up.file,),
        (Finding(message, up.file, None, WARNING),),
    )
