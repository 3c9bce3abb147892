"""golang-migrate and sqlx: ``<N>_<name>.up.sql`` / ``<N>_<name>.down.sql`` pairs (sqlx also ``<N>_<name>.sql``).

Both order migrations by their version as an integer (``2`` before ``10``). golang-migrate sends a whole file
to the server at once, so it runs as one implicit transaction; sqlx wraps each file in a transaction unless
its first line is ``-- no-transaction``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .model import (
    NOTE,
    Finding,
    SourceMigration,
    SourceSection,
    SourceSet,
    read_source_file,
    refuse_duplicates,
    refuse_empty,
    require_directory,
    slug,
)

FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.*?)(?:\.(?P<direction>up|down))?\.sql$")
NO_TRANSACTION = re.compile(r"^\s*--\s*no-transaction\s*$", re.IGNORECASE)


def read(root: Path, tool: str = "golang-migrate") -> SourceSet:
    """Every up/down pair in ``root`` in version order; ``tool`` is ``golang-migrate`` or ``sqlx``."""
    require_directory(root, tool)
    pairs: dict[int, dict[str, Path]] = {}
    names: dict[int, str] = {}
    keyed: list[tuple[object, str]] = []
    ignored: list[str] = []
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        match = FILE.match(path.name)
        simple = match is not None and match["direction"] is None
        if not path.is_file() or match is None or (simple and tool != "sqlx"):
            ignored.append(path.name)
            continue
        version = int(match["version"])
        direction = match["direction"] or "up"
        keyed.append(((version, direction), path.name))
        pairs.setdefault(version, {})[direction] = path
        names.setdefault(version, match["name"])
    refuse_duplicates(root, tool, keyed)
    migrations = [_migration(root, tool, v, names[v], pairs[v]) for v in sorted(pairs)]
    refuse_empty(root, tool, migrations, "'<version>_<name>.up.sql' and '.down.sql' files")
    return SourceSet(tool, root, tuple(migrations), ignored=tuple(ignored))


def _migration(root: Path, tool: str, version: int, name: str, files: dict[str, Path]) -> SourceMigration:
    findings: list[Finding] = []
    if "up" not in files:
        findings.append(
            Finding(
                f"version {version} has only a down file; the import makes its up a no-op",
                files["down"].name,
                level=NOTE,
            )
        )
    up = _section(root, tool, files.get("up"))
    down = _section(root, tool, files["down"]) if "down" in files else None
    return SourceMigration(
        source_id=str(version),
        name=slug(name),
        up=up or SourceSection("", files["down"].name),
        down=down,
        files=tuple(files[d].name for d in ("up", "down") if d in files),
        findings=tuple(findings),
    )


def _section(root: Path, tool: str, path: Path | None) -> SourceSection | None:
    if path is None:
        return None
    text = read_source_file(path, root)
    first, _, rest = text.partition("\n")
    if tool == "sqlx" and NO_TRANSACTION.match(first):
        return SourceSection(rest, path.name, 2, transaction=False)
    return SourceSection(text, path.name, 1)
