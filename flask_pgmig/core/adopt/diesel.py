"""diesel: one folder per migration, ``<version>_<name>/up.sql`` and ``down.sql``.

Versions are timestamps written with or without dashes (``2017-08-31-210424`` or ``20170831210424``); diesel
records them without the dashes in ``__diesel_schema_migrations`` and orders them as strings. A
``metadata.toml`` with ``run_in_transaction = false`` runs the folder outside a transaction.
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

FOLDER = re.compile(r"^(?P<version>[0-9][0-9-]*)_(?P<name>.+)$")
NO_TRANSACTION = re.compile(r"^\s*run_in_transaction\s*=\s*false\s*(#.*)?$", re.MULTILINE)


def read(root: Path) -> SourceSet:
    """Every diesel migration folder in ``root``, in diesel's order (version without dashes)."""
    require_directory(root, "diesel")
    found: list[tuple[str, str, Path]] = []
    ignored: list[str] = []
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        match = FOLDER.match(path.name)
        if not path.is_dir() or match is None or not (path / "up.sql").is_file():
            ignored.append(path.name)
            continue
        found.append((match["version"].replace("-", ""), match["name"], path))
    found.sort(key=lambda item: item[0])
    refuse_duplicates(root, "diesel", [(version, path.name) for version, _, path in found])
    migrations = [_migration(root, version, name, path) for version, name, path in found]
    refuse_empty(root, "diesel", migrations, "'<version>_<name>/up.sql' folders")
    return SourceSet("diesel", root, tuple(migrations), ignored=tuple(ignored))


def _migration(root: Path, version: str, name: str, folder: Path) -> SourceMigration:
    transaction = True
    findings: list[Finding] = []
    metadata = folder / "metadata.toml"
    if metadata.is_file():
        transaction = NO_TRANSACTION.search(read_source_file(metadata, root)) is None
        if not transaction:
            findings.append(
                Finding(
                    "metadata.toml sets run_in_transaction = false",
                    f"{folder.name}/metadata.toml",
                    None,
                    NOTE,
                )
            )
    up_file = f"{folder.name}/up.sql"
    up = SourceSection(read_source_file(folder / "up.sql", root), up_file, 1, transaction)
    down = None
    if (folder / "down.sql").is_file():
        down_file = f"{folder.name}/down.sql"
        down = SourceSection(read_source_file(folder / "down.sql", root), down_file, 1, transaction)
    files = (up_file,) + ((down.file,) if down else ())
    return SourceMigration(version, slug(name), up, down, files, tuple(findings))
