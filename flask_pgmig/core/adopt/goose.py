"""goose: ``<version>_<name>.sql`` files with ``-- +goose Up`` / ``-- +goose Down`` annotations.

goose orders by the version as an integer and records it in ``goose_db_version``. ``StatementBegin`` /
``StatementEnd`` only told goose's own naive splitter where a statement ends (PostgreSQL's lexer does that
here), so they are dropped; ``NO TRANSACTION`` becomes ``transaction:false``; ``ENVSUB ON`` blocks, in which
goose substituted environment variables, are reported. Go migrations cannot be converted: each becomes a no-op
placeholder with a warning.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import MigrationParseError
from .model import (
    NOTE,
    WARNING,
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

FILE = re.compile(r"^(?P<version>\d+)_(?P<name>.*)\.(?P<ext>sql|go)$")
ANNOTATION = re.compile(r"^\s*--\s*\+goose\s+(?P<word>.+?)\s*$", re.IGNORECASE)
ENV_VAR = re.compile(r"\$\{?[A-Za-z_]\w*")


def read(root: Path) -> SourceSet:
    """Every goose migration in ``root`` in goose's order (version as an integer)."""
    require_directory(root, "goose")
    found: list[tuple[int, str, str, Path]] = []
    ignored: list[str] = []
    for path in sorted(root.iterdir(), key=lambda p: p.name):
        match = FILE.match(path.name)
        if not path.is_file() or match is None or path.name.endswith("_test.go"):
            ignored.append(path.name)
            continue
        found.append((int(match["version"]), match["name"], match["ext"], path))
    found.sort(key=lambda item: item[0])
    refuse_duplicates(root, "goose", [(version, path.name) for version, _, _, path in found])
    migrations = [
        _sql_migration(root, v, name, path) if ext == "sql" else _go_placeholder(v, name, path)
        for v, name, ext, path in found
    ]
    refuse_empty(root, "goose", migrations, "'<version>_<name>.sql' files")
    return SourceSet("goose", root, tuple(migrations), ignored=tuple(ignored))


def _go_placeholder(version: int, name: str, path: Path) -> SourceMigration:
    message = (
        "a Go migration cannot be converted: the import wrote a no-op placeholder; port its code to SQL (or a "
        "Python migration) before applying these migrations to a new database"
    )
    empty = SourceSection(
        f"-- goose Go migration '{path.name}' was not converted: port it by hand.\n", path.name
    )
    return SourceMigration(
        str(version), slug(name), empty, None, (path.name,), (Finding(message, path.name, None, WARNING),)
    )


def _sql_migration(root: Path, version: int, name: str, path: Path) -> SourceMigration:
    text = read_source_file(path, root)
    file = path.name
    parts: dict[str, list[str]] = {}
    starts: dict[str, int] = {}
    current: str | None = None
    transaction = True
    envsub = False
    findings: list[Finding] = []
    for number, _, line in lines(text):
        annotation = ANNOTATION.match(line.rstrip("\r\n"))
        word = " ".join(annotation["word"].lower().split()) if annotation else None
        if word in ("up", "down"):
            if word in parts:
                raise MigrationParseError(
                    f"Line {number} of goose migration '{file}' repeats '-- +goose {word.title()}'. Keep one and "
                    "import again.",
                    path=str(path),
                    line=number,
                )
            current = word
            parts[word] = []
            starts[word] = number + 1
            continue
        if word == "no transaction":
            transaction = False
            findings.append(Finding("'-- +goose NO TRANSACTION' became transaction:false", file, number, NOTE))
            line = "\n"
        elif word in ("statementbegin", "statementend"):
            line = "\n"  # keep line numbers; PostgreSQL's lexer finds statement ends itself
        elif word in ("envsub on", "envsub off"):
            envsub = word == "envsub on"
            line = "\n"
        elif word is not None:
            findings.append(
                Finding(
                    f"unknown goose annotation '-- +goose {annotation and annotation['word']}'",
                    file,
                    number,
                    WARNING,
                )
            )
        elif envsub and ENV_VAR.search(line):
            findings.append(
                Finding(
                    "goose substituted environment variables here (ENVSUB ON); the import keeps the text as "
                    "written: replace the variables by their values",
                    file,
                    number,
                    WARNING,
                )
            )
        if current is not None:
            parts[current].append(line)
    if "up" not in parts:
        raise MigrationParseError(
            f"goose migration '{file}' has no '-- +goose Up' annotation, so goose cannot run it either. Add it "
            "above the SQL and import again.",
            path=str(path),
        )
    up = SourceSection("".join(parts["up"]), file, starts["up"], transaction)
    down = (
        SourceSection("".join(parts["down"]), file, starts["down"], transaction) if "down" in parts else None
    )
    return SourceMigration(str(version), slug(name), up, down, (file,), tuple(findings))
