"""Read-only status without parsing the files that have not changed since they were applied.

Every history row records the SHA-256 of its migration file's raw bytes at apply time (``file_sha256``). A file
whose bytes still hash to the value of its applied row is, byte for byte, the file that was applied: its checksum
is the recorded one and its state is ``applied``, so it is not parsed. Parsing lexes each file with PostgreSQL's
lexer (pglast), which made ``status`` and the startup guard cost about 0.1 ms a file; hashing a few hundred bytes
costs about a microsecond. Only new, changed, failed or running files, and files whose rows were written before
the column existed, are parsed as :func:`~flask_pgmig.core.files.discover` parses them.

The :class:`~flask_pgmig.core.plan.Status` is the one ``compute_status(discover(directory), records)`` gives:
same migrations, states and order. An unchanged file is a :class:`KnownFile`, a :class:`MigrationFile` that parses
its (already read) bytes the first time its sections or source are asked for, e.g. when ``status`` ties an
INVALID index to the migration that created it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from . import plan as planning
from .files import ListedFile, MigrationFile, parse_file, read_bytes, version_key
from .plan import HistoryRecord, Status

# What a KnownFile leaves unset until it is asked for: its sections and source (from parsing its bytes) and its
# Path (building one costs more than reading the file; the guard never needs it).
PARSED = ("up", "down", "source")


class KnownFile(MigrationFile):
    """A migration file whose raw bytes hash to its applied history row's ``file_sha256``: parsed on demand.

    It compares equal to the :class:`MigrationFile` that :func:`~flask_pgmig.core.files.parse_file` returns for
    the same bytes (comparing parses it).
    """

    @classmethod
    def vouched_for(cls, listed: ListedFile, raw: bytes, digest: str, record: HistoryRecord) -> KnownFile:
        """The file ``listed`` with bytes ``raw``, known from its applied row ``record`` (same ``file_sha256``)."""
        known = cls.__new__(cls)
        # Frozen dataclass: the fields go straight into the instance dict (the generated __init__ only sets them);
        # the deferred ones stay unset until __getattr__ is asked for them.
        known.__dict__.update(
            version=listed.version, name=listed.name, kind=listed.kind, checksum=record.checksum,
            file_sha256=digest, _listed=listed, _raw=raw,
        )  # fmt: skip
        return known

    def __getattr__(self, attribute: str) -> Any:
        """Fill a deferred field the first time it is read (Python calls this only for attributes not set)."""
        values = self.__dict__
        if attribute == "path" and "_listed" in values:
            values["path"] = Path(values["_listed"].path)
        elif attribute in PARSED and "_listed" in values:
            parsed = parse_file(Path(values["_listed"].path), values["_listed"].file_name, raw=values["_raw"])
            values.update((name, getattr(parsed, name)) for name in PARSED)
        else:
            raise AttributeError(attribute)
        return values[attribute]

    @property
    def parsed(self) -> bool:
        """Whether the bytes have been parsed (the sections or the source were asked for)."""
        return "up" in self.__dict__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MigrationFile):
            return NotImplemented
        return _values(self) == _values(other)

    __hash__ = MigrationFile.__hash__


def _values(file: MigrationFile) -> tuple[Any, ...]:
    return tuple(getattr(file, f.name) for f in fields(MigrationFile) if f.compare)


def read_files(
    listed: Sequence[ListedFile], records: Sequence[HistoryRecord], raws: Sequence[bytes] | None = None
) -> list[MigrationFile]:
    """Every listed file, read and hashed; parsed unless its hash shows it is the file its applied row records.

    A file is matched with the first row of its version, as :func:`~flask_pgmig.core.plan.compute_status` does.
    Files are read (and parsed) in version order, so the first unreadable or malformed one is the one reported.
    ``raws``: the files' bytes when they were read already (:func:`read_all`).
    """
    first_record: dict[int, HistoryRecord] = {}
    for record in records:
        first_record.setdefault(record.key, record)
    files: list[MigrationFile] = []
    for index, entry in enumerate(listed):
        raw = read_bytes(entry.path, entry.file_name) if raws is None else raws[index]
        digest = hashlib.sha256(raw).hexdigest()
        row = first_record.get(entry.key)
        if row is not None and row.status == planning.APPLIED and row.file_sha256 == digest:
            files.append(KnownFile.vouched_for(entry, raw, digest, row))
        else:
            files.append(parse_file(Path(entry.path), entry.file_name, raw=raw))
    return files


def read_all(listed: Sequence[ListedFile]) -> list[bytes]:
    """Every listed file's raw bytes, in order; the first unreadable one raises its error."""
    return [read_bytes(entry.path, entry.file_name) for entry in listed]


def digests_of(raws: Sequence[bytes]) -> list[str]:
    """The SHA-256 of each file's raw bytes (what a history row's ``file_sha256`` records)."""
    return [hashlib.sha256(raw).hexdigest() for raw in raws]


def unchanged_since_applied(
    listed: Sequence[ListedFile], rows: Iterable[tuple[str, str, str | None]], digests: Sequence[str]
) -> bool:
    """True when the history vouches for every file: a sufficient test that the status is clean, without it.

    ``rows`` are the history's (version, status, file_sha256); ``digests`` are :func:`digests_of` the files'
    bytes, in ``listed`` order. True when every row is applied with a hash, each
    file has exactly one row and hashes to it, and each row has its file: the status would then list every
    migration as applied and unchanged. False says nothing: build the status (:func:`quick_status`) to know what
    is what (e.g. rows written before the hash existed). This is the startup guard's boot path, where building a
    thousand file, row and state objects would cost more than reading and hashing the files.
    """
    recorded: dict[int, str] = {}
    for version, status, digest in rows:
        key = version_key(version)
        if status != planning.APPLIED or digest is None or key in recorded:
            return False
        recorded[key] = digest
    if len(recorded) != len(listed):  # listed keys are unique (list_directory refuses duplicates)
        return False
    return all(recorded.get(entry.key) == digest for entry, digest in zip(listed, digests, strict=True))


def parse_all(listed: Sequence[ListedFile]) -> list[MigrationFile]:
    """Parse every listed file, raising the first one's error, as status did before it read the history first.

    For when the database fails before any file was read: a broken file stays the error reported, as it was.
    """
    return [parse_file(Path(entry.path), entry.file_name) for entry in listed]


def quick_status(
    listed: Sequence[ListedFile], records: Sequence[HistoryRecord], raws: Sequence[bytes] | None = None
) -> Status:
    """``compute_status(discover(directory), records)``, parsing only what the history cannot vouch for."""
    return planning.compute_status(read_files(listed, records, raws), records)


__all__ = ["KnownFile", "digests_of", "parse_all", "quick_status", "read_all", "read_files", "unchanged_since_applied"]
