"""Read-only status without parsing unchanged files gives the Status that parsing every file gives.

Each scenario builds a real history, then compares ``quick_status(list_directory(dir), records)`` with
``compute_status(discover(dir), records)`` in full (states, order, records, and each file's parse: comparing a
KnownFile with a parsed file parses it) and checks which files were left unparsed before that comparison. The
guard's shortcut, ``unchanged_since_applied``, must only ever say True of a clean status.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from helpers import copy_scenario, query

from flask_pgmig.core import quick_status as quick_status_module
from flask_pgmig.core import repair as recovery
from flask_pgmig.core.files import ListedFile, MigrationFile, discover, list_directory
from flask_pgmig.core.history import HistoryTable
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.core.plan import HistoryRecord, InvalidIndex, Status, compute_status
from flask_pgmig.core.quick_status import (
    KnownFile,
    digests_of,
    quick_status,
    read_all,
    unchanged_since_applied,
)
from flask_pgmig.errors import MigrationFailed, MigrationParseError


def both(url: str, migrations: Path) -> tuple[Status, Status, list[str]]:
    """(the quick status, the fully parsed one, the versions the quick one did not parse)."""
    with psycopg.connect(url, autocommit=True) as conn:
        records = HistoryTable().read(conn)
    quick = quick_status(list_directory(migrations), records)
    unparsed = [m.version for m in quick.migrations if isinstance(m.file, KnownFile) and not m.file.parsed]
    slow = compute_status(discover(migrations), records)
    assert slow.clean or not vouched(migrations, records)  # the shortcut never hides a problem
    return quick, slow, unparsed


def vouched(migrations: Path, records: list[HistoryRecord]) -> bool:
    return agree(list_directory(migrations), [(r.version, r.status, r.file_sha256) for r in records])


def agree(listed: list[ListedFile], rows: list[tuple[str, str, str | None]]) -> bool:
    """unchanged_since_applied with the files' digests, as the guard calls it."""
    return unchanged_since_applied(listed, rows, digests_of(read_all(listed)))


def records_of(url: str) -> list[HistoryRecord]:
    with psycopg.connect(url, autocommit=True) as conn:
        return HistoryTable().read(conn)


def states(status: Status) -> list[tuple[str, str]]:
    return [(m.version, m.state) for m in status.migrations]


def versions(migrations: Path) -> list[str]:
    return sorted(path.name.split("_", 1)[0] for path in migrations.iterdir())


def test_up_to_date_parses_nothing(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    quick, slow, unparsed = both(database_url, migrations)
    assert unparsed == versions(migrations)
    assert states(quick) == [(v, "applied") for v in versions(migrations)]
    assert quick == slow
    assert vouched(migrations, records_of(database_url))


def test_pending_files_are_parsed(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    first, *rest = versions(migrations)
    Migrator.create(database_url, migrations).migrate(to=first)
    quick, slow, unparsed = both(database_url, migrations)
    assert unparsed == [first]
    assert states(quick) == [(first, "applied")] + [(v, "pending") for v in rest]
    pending = [m.file for m in quick.pending]
    assert all(type(f) is MigrationFile for f in pending)  # parsed up front: they are what migrate would run
    assert quick == slow


@pytest.mark.parametrize(
    ("edit", "state"),
    [
        (lambda text: text + "\n\n   \n", "applied"),  # trailing blank lines: same checksum, other bytes
        (lambda text: text.replace("-- migrate:down", "-- a comment\n-- migrate:down"), "modified"),
        (lambda text: text.replace("text NOT NULL", "varchar(200) NOT NULL"), "modified"),
    ],
    ids=["whitespace", "comment", "sql"],
)
def test_edited_files_are_parsed_and_judged_by_their_checksum(
    database_url: str, tmp_path: Path, edit: Callable[[str], str], state: str
) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    edited = sorted(migrations.iterdir())[0]
    edited.write_text(edit(edited.read_text()))
    quick, slow, unparsed = both(database_url, migrations)
    first, *rest = versions(migrations)
    assert unparsed == rest
    assert states(quick)[0] == (first, state)
    assert quick == slow
    assert not vouched(migrations, records_of(database_url))  # even when clean: other bytes, nothing vouched


def test_a_missing_file(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    gone = sorted(migrations.iterdir())[1]
    gone.unlink()
    quick, slow, unparsed = both(database_url, migrations)
    assert [version for version, state in states(quick) if state == "missing"] == [gone.name.split("_", 1)[0]]
    assert len(unparsed) == 2
    assert quick == slow


def test_failed_and_running_rows_are_parsed_though_their_hash_matches(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("nontx_fails", tmp_path)
    with pytest.raises(MigrationFailed):
        Migrator.create(database_url, migrations).migrate()
    created, failed = versions(migrations)
    quick, slow, unparsed = both(database_url, migrations)
    assert states(quick) == [(created, "applied"), (failed, "failed")]
    assert unparsed == [created]
    assert query(database_url, "SELECT file_sha256 IS NOT NULL FROM pgmig_history WHERE version = %s", [failed])
    assert quick == slow
    query(database_url, "UPDATE pgmig_history SET status = 'running' WHERE version = %s", [failed])
    quick, slow, unparsed = both(database_url, migrations)
    assert states(quick)[1] == (failed, "running") and unparsed == [created]
    assert quick == slow


def test_an_out_of_order_file(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    (migrations / "20260116000000_merged_branch.sql").write_text("-- migrate:up\nCREATE TABLE merged (id int);\n")
    quick, slow, unparsed = both(database_url, migrations)
    assert [m.version for m in quick.out_of_order] == ["20260116000000"]
    assert "20260116000000" not in unparsed and len(unparsed) == 3
    assert quick == slow


def test_rows_without_a_hash_are_parsed(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    first, *rest = versions(migrations)
    query(database_url, "UPDATE pgmig_history SET file_sha256 = NULL WHERE version = %s", [first])
    quick, slow, unparsed = both(database_url, migrations)
    assert unparsed == rest
    assert quick == slow
    assert slow.clean and not vouched(migrations, records_of(database_url))
    query(database_url, "ALTER TABLE pgmig_history DROP COLUMN file_sha256")  # a table from an older release
    quick, slow, unparsed = both(database_url, migrations)
    assert unparsed == []
    assert states(quick) == [(v, "applied") for v in versions(migrations)]
    assert quick == slow


def test_python_migrations(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("python_basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    quick, slow, unparsed = both(database_url, migrations)
    assert unparsed == versions(migrations)
    assert quick == slow
    assert vouched(migrations, records_of(database_url))


def test_a_known_file_parses_on_demand_into_the_same_sections(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    quick, _, _ = both(database_url, migrations)
    known = quick.migrations[2].file
    assert isinstance(known, KnownFile) and not known.parsed
    assert known.path == sorted(migrations.iterdir())[2] and not known.parsed  # the path needs no parsing
    parsed = discover(migrations)[2]
    assert known.up == parsed.up and known.parsed
    assert (known.down, known.source, known.checksum) == (parsed.down, parsed.source, parsed.checksum)
    assert known == parsed and parsed == known and hash(known) == hash(parsed)
    with pytest.raises(AttributeError):
        _ = known.no_such_field


def test_an_unreadable_changed_file_is_reported_as_before(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    broken = sorted(migrations.iterdir())[1]
    broken.write_text(broken.read_text().replace("-- migrate:up", "-- migrate:upp"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        records = HistoryTable().read(conn)
    with pytest.raises(MigrationParseError) as slow_error:
        discover(migrations)
    with pytest.raises(MigrationParseError) as quick_error:
        quick_status(list_directory(migrations), records)
    assert quick_error.value.message == slow_error.value.message
    assert "-- migrate:upp" in quick_error.value.message


def test_migrator_status_matches_the_parsing_one(database_url: str, tmp_path: Path) -> None:
    """Cosmetic-edit notes and INVALID indexes too; an unparsed file is parsed to name its INVALID index."""
    migrations = copy_scenario("basic", tmp_path)
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate()
    first = sorted(migrations.iterdir())[0]
    first.write_text(first.read_text().replace("-- migrate:down", "-- cosmetic\n-- migrate:down"))
    # an index left INVALID (what a failed CREATE INDEX CONCURRENTLY leaves), created by an unchanged migration
    query(database_url, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'users_email_idx'::regclass")
    quick = migrator.status()
    with psycopg.connect(database_url, autocommit=True) as conn:
        history = HistoryTable()
        files = discover(migrations)
        slow = recovery.describe(conn, history, compute_status(files, history.read(conn)), files)
    assert quick.invalid_indexes == (InvalidIndex("public", "users_email_idx", "users", "20260117120000"),)
    assert [m.change for m in quick.migrations] == ["cosmetic", None, None]
    assert quick == slow


def test_unchanged_since_applied_needs_every_row_and_file_to_agree(tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    listed = list_directory(migrations)
    rows = [(f.version, "applied", f.file_sha256) for f in discover(migrations)]
    assert agree(listed, rows)
    (version, _, digest), *rest = rows
    assert not agree(listed, rows[1:])  # a pending file
    assert not agree(listed, [*rows, ("20260201000000", "applied", digest)])  # a missing file
    assert not agree(listed, [(version, "failed", digest), *rest])
    assert not agree(listed, [(version, "applied", None), *rest])  # a row from before the hash
    assert not agree(listed, [(version, "applied", "0" * 64), *rest])  # other bytes
    (migrations / "20260120000000_x.sql").write_text("-- migrate:up\nSELECT 1;\n")
    listed = list_directory(migrations)
    rows = [(f.version, "applied", f.file_sha256) for f in discover(migrations)]
    assert agree(listed, rows)
    assert not agree(listed, [*rows, ("20260120", "applied", rows[-1][2])])  # one version twice


def test_migrate_parses_only_what_it_may_run(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy finds most files applied: migrate vouches for those by their hash and parses the pending ones."""
    migrations = copy_scenario("basic", tmp_path)
    first, *rest = versions(migrations)
    Migrator.create(database_url, migrations).migrate(to=first)
    parsed: list[str] = []
    real_parse = quick_status_module.parse_file

    def spy(path: Path, *args: object, **kwargs: object) -> MigrationFile:
        parsed.append(path.name.split("_", 1)[0])
        return real_parse(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(quick_status_module, "parse_file", spy)
    result = Migrator.create(database_url, migrations).migrate()
    assert [step.version for step in result.steps] == rest
    assert parsed == rest
    parsed.clear()
    assert Migrator.create(database_url, migrations).migrate().steps == ()
    assert parsed == []
    assert states(Migrator.create(database_url, migrations).status()) == [(v, "applied") for v in versions(migrations)]
