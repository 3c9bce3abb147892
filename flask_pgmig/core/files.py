"""Migration files: discovery, the file-name grammar, section and option parsing, checksums.

Pure: reads files, never touches a database. Everything here raises :class:`MigrationFileError` or
:class:`MigrationParseError` with the file (and line) named and the fix at the end. PostgreSQL's lexer (pglast,
through :mod:`.sql`) is imported only when a file is really lexed, so listing and hashing files stays cheap.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import MigrationFileError, MigrationParseError

FILE_NAME = re.compile(r"^(?P<version>\d{14}|\d{8})_(?P<name>[\w-]+)\.(?P<kind>sql|py)$")
# A comment line that tries to be a directive; anything after "migrate:" is checked so typos are caught.
DIRECTIVE = re.compile(r"^[ \t]*--[ \t]*migrate:[ \t]*(?P<word>\S*)(?P<rest>.*)$")
DURATION = re.compile(r"^(?P<number>\d+)(?P<unit>ms|s|min|m|h|d)?$")
UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1}
OPTION_NAMES = ("transaction", "lock_timeout", "statement_timeout")
VERSION_WIDTH = 14
READ_SIZE = 1 << 16  # most migration files fit in one read


@dataclass(frozen=True)
class SectionOptions:
    """Options written after a section marker, e.g. ``-- migrate:up transaction:false lock_timeout:30s``."""

    transaction: bool = True
    lock_timeout_ms: int | None = None
    statement_timeout_ms: int | None = None


@dataclass(frozen=True)
class Section:
    """One section (up or down) of a migration; ``line`` is the file line where its body starts."""

    sql: str
    line: int
    options: SectionOptions = field(default_factory=SectionOptions)

    @property
    def is_blank(self) -> bool:
        """True when the section holds only whitespace and comments."""
        return is_blank_sql(self.sql)


@dataclass(frozen=True)
class MigrationFile:
    """One parsed migration file. ``down`` is None when the migration is irreversible."""

    version: str
    name: str
    path: Path
    kind: str  # "sql" or "py"
    up: Section
    down: Section | None
    checksum: str
    source: str = field(repr=False)
    file_sha256: str = ""  # of the file's raw bytes: an unchanged file need not be parsed again (guard, status)

    @property
    def key(self) -> int:
        """The version as a number, 8-digit versions right-padded with zeros, for ordering."""
        return version_key(self.version)

    @property
    def id(self) -> str:
        """``<version>_<name>``, the way messages name a migration."""
        return f"{self.version}_{self.name}"

    @property
    def transactional(self) -> bool:
        """Whether the up section runs in one transaction with its history row."""
        return self.up.options.transaction

    @property
    def is_noop(self) -> bool:
        """An up section that is empty or only comments: nothing to run either way."""
        return self.kind == "sql" and self.up.is_blank


class ListedFile(NamedTuple):
    """A directory entry whose name follows the grammar, not yet read: its version key, NFC file name, path and
    the parts of its name. The path stays a string: building a :class:`~pathlib.Path` costs more than reading a
    small file.
    """

    key: int
    file_name: str
    path: str
    version: str
    name: str
    kind: str


def version_key(version: str) -> int:
    """Compare versions as numbers after right-padding 8-digit ones to 14 digits."""
    return int(version.ljust(VERSION_WIDTH, "0"))


def checksum(text: str) -> str:
    """SHA-256 of text after normalizing line endings and trailing whitespace of every line and of the whole."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    normalized = "\n".join(line.rstrip() for line in lines).strip("\n")
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def is_blank_sql(sql: str) -> bool:
    """True when sql holds only whitespace and comments."""
    if not sql.strip():
        return True
    if "/*" not in sql:  # only '--' comments, which end their line: no need for the lexer
        return all(not line or line.startswith("--") for line in (raw.strip() for raw in sql.splitlines()))
    from .sql import scan_tokens  # pglast: only when there is something to lex

    tokens = scan_tokens(sql)
    return tokens is not None and all(tok.name in ("SQL_COMMENT", "C_COMMENT") for tok in tokens)


def is_ignored(file_name: str) -> bool:
    """Files that clearly are not migrations: dotfiles, READMEs, Markdown, Python package files."""
    lowered = file_name.lower()
    return (
        file_name.startswith((".", "_", "~"))
        or lowered.startswith("readme")
        or lowered.endswith((".md", ".pyc", ".swp", "~"))
    )


def looks_like_migration(file_name: str) -> bool:
    """A file that should follow the grammar: it ends in .sql/.py, or starts with a digit."""
    return file_name.lower().endswith((".sql", ".py")) or file_name[:1].isdigit()


def discover(directory: str | os.PathLike[str], *, init_hint: str = "flask db init") -> list[MigrationFile]:
    """Read and parse every migration in directory (not its sub-directories), ordered by version.

    Every malformed file name is listed in one error; two files with the same version are an error.
    """
    return [
        parse_file(Path(listed.path), listed.file_name)
        for listed in list_directory(directory, init_hint=init_hint)
    ]


def list_directory(
    directory: str | os.PathLike[str], *, init_hint: str = "flask db init"
) -> list[ListedFile]:
    """The migration files of directory, ordered by version, without reading them (:func:`discover`'s errors)."""
    root = Path(directory)
    if not root.is_dir():
        raise MigrationFileError(
            f"The migrations directory '{root}' does not exist. Run '{init_hint}' to create it, "
            "or point PGMIG_DIRECTORY (or --directory) at the right folder.",
            paths=[str(root)],
        )
    malformed: list[str] = []
    found: list[ListedFile] = []
    for entry in os.scandir(root):
        if not entry.is_file():
            continue
        name = unicodedata.normalize("NFC", entry.name)
        match = FILE_NAME.match(name)
        if match is not None:  # a name that follows the grammar is never one is_ignored() skips
            version, stem, kind = match.groups()
            found.append(ListedFile(version_key(version), name, entry.path, version, stem, kind))
        elif not is_ignored(entry.name) and looks_like_migration(name):
            malformed.append(name)
    if malformed:
        listed = ", ".join(f"'{name}'" for name in sorted(malformed))
        raise MigrationFileError(
            f"These files in '{root}' do not follow the migration file name grammar: {listed}. "
            "Rename each to '<version>_<name>.sql' (or .py), where <version> is 14 digits (YYYYMMDDHHMMSS) or "
            "8 digits (YYYYMMDD) and <name> is letters, digits, '_' or '-'.",
            paths=[str(root / name) for name in malformed],
        )
    found.sort()
    _refuse_duplicates(root, found)
    return found


def _refuse_duplicates(root: Path, found: Iterable[ListedFile]) -> None:
    by_key: dict[int, list[str]] = {}
    for entry in found:
        by_key.setdefault(entry.key, []).append(entry.file_name)
    clashes = [names for names in by_key.values() if len(names) > 1]
    if clashes:
        listed = "; ".join(" and ".join(f"'{n}'" for n in names) for names in clashes)
        raise MigrationFileError(
            f"Two migrations in '{root}' share a version: {listed}. "
            "Give one of them a new version (for example with 'flask db new'), keeping their order.",
            paths=[str(root / n) for names in clashes for n in names],
        )


def parse_file(path: Path, file_name: str | None = None, *, raw: bytes | None = None) -> MigrationFile:
    """Parse one migration file whose name already matched the grammar (from ``raw`` when its bytes are read)."""
    display = file_name or unicodedata.normalize("NFC", path.name)
    match = FILE_NAME.match(display)
    if match is None:
        raise MigrationFileError(f"'{display}' is not a migration file name.", paths=[str(path)])
    if raw is None:
        raw = read_bytes(path, display)
    try:
        source = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MigrationParseError(
            f"Migration file '{display}' is not valid UTF-8 (byte {exc.start}). Save it as UTF-8.",
            path=str(path),
        ) from None
    if match["kind"] == "py":
        up, down = parse_python_sections(source, str(path), display)
    else:
        up, down = parse_sections(source, str(path), display)
    return MigrationFile(
        version=match["version"],
        name=match["name"],
        path=path,
        kind=match["kind"],
        up=up,
        down=down,
        checksum=checksum(up.sql),
        source=source,
        file_sha256=hashlib.sha256(raw).hexdigest(),
    )


def read_bytes(path: str | os.PathLike[str], display: str) -> bytes:
    """A migration file's raw bytes, or the error naming it when it cannot be read.

    os.open/os.read rather than open(): half the system calls and no file object, which is half the cost of
    status on a directory of small files.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(fd, READ_SIZE):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    except OSError as exc:
        raise MigrationFileError(
            f"Could not read migration file '{display}': {exc.strerror}. Check its permissions.",
            paths=[str(path)],
        ) from None


# What can make a line that starts with '--' part of something else: a string, a quoted name, a dollar-quoted
# body, a block comment. A file with none of these needs no lexer to tell its comments.
_SPANS_LINES = ("'", '"', "$", "/*")


def _comment_line_starts(source: str) -> set[int] | None:
    """Character offsets of '--' comments found by PostgreSQL's lexer; None when every line whose first non-blank
    characters are '--' is a comment (nothing in the file can span lines), or when the lexer cannot read it."""
    if not any(mark in source for mark in _SPANS_LINES):
        return None
    from .sql import scan_tokens  # pglast: only for a file whose directives could hide in a string

    tokens = scan_tokens(source)
    return None if tokens is None else {tok.start for tok in tokens if tok.name == "SQL_COMMENT"}


def parse_sections(source: str, path: str, display: str) -> tuple[Section, Section | None]:
    """Split a SQL migration into its up and down sections, validating markers and options."""
    comments = _comment_line_starts(source) if "migrate:" in source else set()
    lines = source.splitlines(keepends=True)
    markers: dict[
        str, tuple[int, SectionOptions, int]
    ] = {}  # kind -> (line number, options, char offset of body)
    offset = 0
    first_content_line: int | None = None
    for number, line in enumerate(lines, start=1):
        directive = DIRECTIVE.match(line.rstrip("\r\n"))
        comment_at = offset + (len(line) - len(line.lstrip(" \t")))
        if directive and (comments is None or comment_at in comments):
            kind = directive["word"]
            _check_marker(kind, number, markers, path, display)
            options = parse_options(directive["rest"], path=path, display=display, line=number)
            markers[kind] = (number, options, offset + len(line))
        elif (
            first_content_line is None and not markers and line.strip() and not line.strip().startswith("--")
        ):
            first_content_line = number
        offset += len(line)
    if "up" not in markers:
        raise MigrationParseError(
            f"Migration file '{display}' has no '-- migrate:up' line. Add '-- migrate:up' on its own line above "
            "the SQL that applies the migration, and '-- migrate:down' above the SQL that reverts it.",
            path=path,
        )
    up_line, up_options, up_start = markers["up"]
    if first_content_line is not None and not is_blank_sql(source[: _line_offset(lines, up_line)]):
        raise MigrationParseError(
            f"Line {first_content_line} of '{display}' has SQL before '-- migrate:up' (line {up_line}). "
            "Move it below '-- migrate:up' or '-- migrate:down'.",
            path=path,
            line=first_content_line,
        )
    if "down" in markers:
        down_line, down_options, down_start = markers["down"]
        up_end = _line_offset(lines, down_line)
        up = Section(source[up_start:up_end], up_line + 1, up_options)
        down = Section(source[down_start:], down_line + 1, down_options)
        return up, (None if down.is_blank and not up.is_blank else down)
    return Section(source[up_start:], up_line + 1, up_options), None


def _line_offset(lines: list[str], number: int) -> int:
    return sum(len(line) for line in lines[: number - 1])


def _check_marker(
    kind: str, number: int, markers: dict[str, tuple[int, SectionOptions, int]], path: str, display: str
) -> None:
    if kind not in ("up", "down"):
        import difflib  # only for the error message

        guess = difflib.get_close_matches(kind, ["up", "down"], n=1, cutoff=0.3)
        hint = f" Did you mean '-- migrate:{guess[0]}'?" if guess else ""
        raise MigrationParseError(
            f"Line {number} of '{display}' has an unknown directive '-- migrate:{kind}'.{hint} "
            "Only '-- migrate:up' and '-- migrate:down' are recognized.",
            path=path,
            line=number,
        )
    if kind in markers:
        raise MigrationParseError(
            f"Line {number} of '{display}' repeats '-- migrate:{kind}' (first on line {markers[kind][0]}). "
            "Keep one '-- migrate:up' and at most one '-- migrate:down' per file.",
            path=path,
            line=number,
        )
    if kind == "down" and "up" not in markers:
        raise MigrationParseError(
            f"Line {number} of '{display}' has '-- migrate:down' before any '-- migrate:up'. "
            "Put the up section first.",
            path=path,
            line=number,
        )


_NO_OPTIONS = SectionOptions()


def parse_options(text: str, *, path: str, display: str, line: int) -> SectionOptions:
    """Parse ``key:value`` options written after a section marker."""
    if not text or text.isspace():  # most markers: one shared (frozen) instance
        return _NO_OPTIONS
    values: dict[str, object] = {}
    for word in text.split():
        key, sep, value = word.partition(":")
        if key not in OPTION_NAMES or not sep:
            import difflib  # only for the error message

            guess = difflib.get_close_matches(key, OPTION_NAMES, n=1)
            hint = f" Did you mean '{guess[0]}'?" if guess else ""
            raise MigrationParseError(
                f"Line {line} of '{display}' has an unknown option '{word}'.{hint} "
                f"Valid options are {', '.join(n + ':...' for n in OPTION_NAMES)}.",
                path=path,
                line=line,
            )
        if key in values:
            raise MigrationParseError(
                f"Line {line} of '{display}' gives option '{key}' twice. Keep one.", path=path, line=line
            )
        values[key] = _option_value(key, value, path=path, display=display, line=line)
    return SectionOptions(
        transaction=bool(values.get("transaction", True)),
        lock_timeout_ms=_int_or_none(values.get("lock_timeout")),
        statement_timeout_ms=_int_or_none(values.get("statement_timeout")),
    )


def _int_or_none(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _option_value(key: str, value: str, *, path: str, display: str, line: int) -> bool | int:
    if key == "transaction":
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise MigrationParseError(
            f"Line {line} of '{display}' sets transaction to '{value}'. Use 'transaction:false' or "
            "'transaction:true'.",
            path=path,
            line=line,
        )
    duration = DURATION.match(value.lower())
    if duration is None:
        raise MigrationParseError(
            f"Line {line} of '{display}' sets {key} to '{value}', which is not a duration. "
            f"Write it like '{key}:500ms', '{key}:30s', '{key}:5min' or '{key}:2h' ('0' disables it).",
            path=path,
            line=line,
        )
    return int(duration["number"]) * UNIT_MS[duration["unit"]]


def parse_python_sections(source: str, path: str, display: str) -> tuple[Section, Section | None]:
    """Read a Python migration's shape without importing it: up/down functions and ``transaction = False``.

    The whole file is the up "section" (its checksum is the file's); down is present when ``def down`` is.
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise MigrationParseError(
            f"Line {exc.lineno} of '{display}' is not valid Python: {exc.msg}. Fix the syntax error.",
            path=path,
            line=exc.lineno,
            column=exc.offset,
        ) from None
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    if "up" not in functions:
        raise MigrationParseError(
            f"Python migration '{display}' has no 'def up(conn)' at module level. Add one.", path=path
        )
    transaction = True
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "transaction" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            transaction = bool(node.value.value)
    options = SectionOptions(transaction=transaction)
    up = Section(source, 1, options)
    return up, (Section(source, 1, options) if "down" in functions else None)
