"""dbmate: ``<digits>_<name>.sql`` files with ``-- migrate:up`` / ``-- migrate:down`` sections.

dbmate orders files by name and records each version string in ``schema_migrations``. Its only option is
``transaction:false``; dbmate ignores anything else, so other options are reported rather than refused.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import MigrationParseError
from .model import (
    NOTE,
    Finding,
    SourceMigration,
    SourceSection,
    SourceSet,
    lines,
    read_source_file,
    refuse_duplicates,
    refuse_empty,
    require_directory,
    slug,
)

FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.*)\.sql$")
MARKER = re.compile(r"^--\s*migrate:(?P<kind>up|down)(?P<rest>(?:[ \t]+[^\n]*)?)\s*$")


def read(root: Path) -> SourceSet:
    """Every dbmate migration in ``root`` (not its sub-directories), in dbmate's order (file name)."""
    require_directory(root, "dbmate")
    migrations: list[SourceMigration] = []
    ignored: list[str] = []
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        match = FILE.match(path.name)
        if not path.is_file() or match is None:
            ignored.append(path.name)
            continue
        migrations.append(_migration(path, root, match["version"], match["name"]))
    refuse_duplicates(root, "dbmate", [(m.source_id, m.files[0]) for m in migrations])
    refuse_empty(root, "dbmate", migrations, "'<version>_<name>.sql' files")
    return SourceSet("dbmate", root, tuple(migrations), ignored=tuple(ignored))


def _migration(path: Path, root: Path, version: str, name: str) -> SourceMigration:
    text = read_source_file(path, root)
    file = path.name
    found: dict[str, tuple[int, int, str]] = {}  # kind -> (marker line, body offset, options)
    order: list[str] = []
    for number, offset, line in lines(text):
        marker = MARKER.match(line.rstrip("\r\n"))
        if marker is None:
            continue
        kind = marker["kind"]
        if kind in found:
            raise MigrationParseError(
                f"Line {number} of dbmate migration '{file}' repeats '-- migrate:{kind}' (first on line "
                f"{found[kind][0]}), which dbmate refuses too. Keep one of them and import again.",
                path=str(path),
                line=number,
            )
        found[kind] = (number, offset + len(line), marker["rest"])
        order.append(kind)
    if "up" not in found:
        raise MigrationParseError(
            f"dbmate migration '{file}' has no '-- migrate:up' line, so dbmate cannot run it either. Add "
            "'-- migrate:up' above its SQL and import again.",
            path=str(path),
        )
    findings: list[Finding] = []
    sections: dict[str, SourceSection] = {}
    for index, kind in enumerate(order):
        number, start, rest = found[kind]
        end = found[order[index + 1]][0] if index + 1 < len(order) else None
        body = text[start : _offset_of_line(text, end)] if end is not None else text[start:]
        transaction = True
        for word in rest.split():
            if word.lower() == "transaction:false":
                transaction = False
            elif word.lower() != "transaction:true":
                findings.append(
                    Finding(f"dbmate option '{word}' has no equivalent and was dropped", file, number, NOTE)
                )
        sections[kind] = SourceSection(body, file, number + 1, transaction)
    return SourceMigration(
        source_id=version,
        name=slug(name),
        up=sections["up"],
        down=sections.get("down"),
        files=(file,),
        findings=tuple(findings),
    )


def _offset_of_line(text: str, number: int) -> int:
    for current, offset, _ in lines(text):
        if current == number:
            return offset
    return len(text)
