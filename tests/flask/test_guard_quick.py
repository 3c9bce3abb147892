"""The startup guard reads unchanged files by their raw hash only, and still works on older history tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import NOWHERE, AppFactory
from helpers import copy_scenario, query

from flask_pgmig.core.migrator import Migrator, Settings
from flask_pgmig.core.quick_status import KnownFile
from flask_pgmig.errors import MigrationParseError, PendingMigrationsError
from flask_pgmig.guard import read_status


def has_hash_column(url: str) -> bool:
    return bool(
        query(url, "SELECT 1 FROM pg_attribute WHERE attrelid = 'pgmig_history'::regclass "
                   "AND attname = 'file_sha256' AND NOT attisdropped")
    )  # fmt: skip


def test_up_to_date_files_are_not_parsed(make_app: AppFactory, database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    status = read_status(database_url, Settings(directory=migrations))
    assert status.clean and len(status.migrations) == 3
    assert all(isinstance(m.file, KnownFile) and not m.file.parsed for m in status.migrations)
    make_app(scenario=None, PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error")  # boots


def test_a_history_table_without_the_hash_column(make_app: AppFactory, database_url: str, tmp_path: Path) -> None:
    """Every file is parsed then; the guard stays read-only (it does not add the column back)."""
    migrations = copy_scenario("basic", tmp_path)
    first = sorted(migrations.iterdir())[0].name.split("_", 1)[0]
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate(to=first)
    query(database_url, "ALTER TABLE pgmig_history DROP COLUMN file_sha256")
    with pytest.raises(PendingMigrationsError) as caught:
        make_app(scenario=None, PGMIG_DATABASE_URL=database_url, PGMIG_GUARD="error")
    assert caught.value.problems == [
        "pending: 20260116080000_add_users_name",
        "pending: 20260117120000_index_users_email",
    ]
    status = read_status(database_url, Settings(directory=migrations))
    assert [m.state for m in status.migrations] == ["applied", "pending", "pending"]
    assert not any(isinstance(m.file, KnownFile) for m in status.migrations)
    assert not has_hash_column(database_url)


def test_a_broken_file_is_reported_before_an_unreachable_database(make_app: AppFactory, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    (migrations / "20260118000000_broken.sql").write_text("CREATE TABLE x (id int);\n")
    with pytest.raises(MigrationParseError) as caught:
        make_app(scenario=None, PGMIG_DATABASE_URL=NOWHERE, PGMIG_GUARD="error")
    assert "'20260118000000_broken.sql' has no '-- migrate:up' line" in caught.value.message
