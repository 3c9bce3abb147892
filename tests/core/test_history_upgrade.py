"""A history table written by an earlier release (no ``file_sha256`` column) keeps working and is upgraded."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
from helpers import copy_scenario, query

from flask_pgmig.core.migrator import Migrator


def _drop_file_hash_column(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE pgmig_history DROP COLUMN file_sha256")


def test_new_rows_record_the_raw_file_hash(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    Migrator.create(database_url, migrations).migrate()
    rows = dict(query(database_url, "SELECT version, file_sha256 FROM pgmig_history"))
    for path in sorted(migrations.glob("*.sql")):
        version = path.name.split("_", 1)[0]
        assert rows[version] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_older_history_table_is_read_and_then_upgraded(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    first = sorted(migrations.glob("*.sql"))[0]
    migrator = Migrator.create(database_url, migrations)
    migrator.migrate(to=first.name.split("_", 1)[0])
    _drop_file_hash_column(database_url)

    status = migrator.status()  # read-only: must read the older table without the column, and not alter it
    assert [m.state for m in status.migrations] == ["applied", "pending", "pending"]
    assert not query(database_url, "SELECT 1 FROM pg_attribute WHERE attname = 'file_sha256' "
                                   "AND attrelid = 'pgmig_history'::regclass")  # fmt: skip

    migrator.migrate()  # under the lock: the column comes back, new rows fill it, the old row keeps NULL
    rows = dict(query(database_url, "SELECT version, file_sha256 FROM pgmig_history"))
    assert rows.pop(first.name.split("_", 1)[0]) is None
    assert all(value is not None and len(value) == 64 for value in rows.values())
    assert migrator.status().clean
