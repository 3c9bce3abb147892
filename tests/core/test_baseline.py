"""baseline V and baseline --from-schema: adopt a database that already has its schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from helpers import copy_scenario, history_versions, query, tables

from flask_pgmig.core.baseline import baseline_file
from flask_pgmig.core.files import discover
from flask_pgmig.core.lock import lock_key
from flask_pgmig.core.migrator import Migrator
from flask_pgmig.embedded import EmbeddedServer
from flask_pgmig.errors import ConfigError, HistoryError, LockTimeout

EXISTING_SCHEMA = """
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL);
ALTER TABLE users ADD COLUMN name text;
"""


def run(url: str, text: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(text.encode())


def test_baseline_records_without_running_then_the_rest_applies(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    run(database_url, EXISTING_SCHEMA)  # the schema of the first two migrations, made by another tool
    migrator = Migrator.create(database_url, migrations)
    result = migrator.baseline("20260116080000")
    assert result.recorded == ("20260115093000", "20260116080000")
    assert history_versions(database_url) == ["20260115093000", "20260116080000"]
    checksums = dict(query(database_url, "SELECT version, checksum FROM pgmig_history"))
    assert checksums == {f.version: f.checksum for f in discover(migrations)[:2]}
    assert query(database_url, "SELECT duration_ms, down_sql FROM pgmig_history ORDER BY version")[0] == (
        0, "DROP TABLE users;\n",
    )  # fmt: skip
    audit = query(database_url, "SELECT action, outcome, versions, detail->>'to' FROM pgmig_history_audit")
    assert audit == [("baseline", "ok", ["20260115093000", "20260116080000"], "20260116080000")]
    status = migrator.status()
    assert [m.state for m in status.migrations] == ["applied", "applied", "pending"]
    assert [s.version for s in migrator.migrate().steps] == ["20260117120000"]  # would fail if 1-2 ran again
    assert migrator.status().clean


def test_baseline_refuses_existing_history_unless_forced(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    migrator = Migrator.create(database_url, migrations, lock_wait=0.2)
    with psycopg.connect(database_url, autocommit=True) as holder:  # another run holds the migration lock
        holder.execute(
            "SELECT pg_advisory_lock(%s)", [lock_key(holder.info.dbname, "public", "pgmig_history")]
        )
        with pytest.raises(LockTimeout):
            migrator.baseline("20260115093000")
    assert "pgmig_history" not in tables(database_url)  # nothing happened without the lock
    migrator.baseline("20260115093000")
    assert tables(database_url) == {"pgmig_history", "pgmig_history_audit"}  # nothing ran
    with pytest.raises(HistoryError, match=r"already records 1 migration\(s\).*add --force"):
        migrator.baseline("20260116080000")
    run(database_url, "UPDATE pgmig_history SET checksum = 'edited'")
    result = migrator.baseline("20260116080000", force=True)
    assert result.recorded == ("20260115093000", "20260116080000")  # the edited row was replaced
    assert migrator.status().having("modified") == []


NO_SERVER = "postgresql://nobody@127.0.0.1:1/none"  # these refusals come before any connection


def test_baseline_version_must_be_a_migration(tmp_path: Path) -> None:
    migrator = Migrator.create(NO_SERVER, copy_scenario("basic", tmp_path))
    with pytest.raises(ConfigError, match=r"'v1' is not a migration version"):
        migrator.baseline("v1")
    with pytest.raises(ConfigError, match=r"No migration in '.*' has the version '20260116000000'"):
        migrator.baseline("20260116000000")
    with pytest.raises(ConfigError, match=r"Give the version to baseline to"):
        migrator.baseline(None)


SCHEMA = """
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE TABLE people (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, mood mood);
CREATE INDEX people_name ON people (name);
CREATE FUNCTION shout(t text) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN upper(t) || '!'; END; $$;
CREATE VIEW sad_people AS SELECT name FROM people WHERE mood = 'sad';
"""


def test_from_schema_dumps_baselines_and_rebuilds(make_database: Callable[[], str], tmp_path: Path) -> None:
    existing, fresh = make_database(), make_database()
    server_major = int(query(existing, "SHOW server_version_num")[0][0]) // 10000
    if not Path(f"/usr/lib/postgresql/{server_major}/bin/pg_dump").exists():
        # the embedded servers of the second run and of the version matrix ship no client tools; the main run
        # (the local server, whose pg_dump is installed with it) covers this test
        pytest.skip(f"no pg_dump of PostgreSQL {server_major} on this machine to dump that server with")
    run(existing, SCHEMA)
    migrations = tmp_path / "migrations"
    missing = str(tmp_path / "bin" / "pg_dump")
    with pytest.raises(ConfigError, match=r"pg_dump was not found .*pass --pg-dump"):
        Migrator.create(existing, migrations).baseline(from_schema=True, pg_dump=missing)
    assert not migrations.exists()
    result = Migrator.create(existing, migrations).baseline(from_schema=True, version="20260101000000")
    assert result.dump_file == migrations / "20260101000000_baseline.sql" and result.recorded == (
        "20260101000000",
    )
    text = result.dump_file.read_text(encoding="utf-8")
    assert 'CREATE TABLE "public"."people"' in text and "pgmig_history" not in text
    assert "set_config('search_path', '', true)" in text and "\nSET statement_timeout" not in text
    assert Migrator.create(existing, migrations).status().clean
    # the file builds an empty database with the same objects, and the next migration runs after it in the
    # same session: it uses unqualified names, so pg_dump's empty search_path must not leak out of the baseline
    (migrations / "20260102000000_more.sql").write_text(
        "-- migrate:up\nINSERT INTO people (name, mood) VALUES (shout('ann'), 'sad');\n", encoding="utf-8"
    )
    Migrator.create(fresh, migrations).migrate()
    assert query(fresh, "SELECT name FROM sad_people") == [("ANN!",)]


def test_from_schema_refuses_a_directory_with_migrations(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="already has migrations; --from-schema writes the first one"):
        Migrator.create(NO_SERVER, copy_scenario("basic", tmp_path)).baseline(from_schema=True)


def test_from_schema_refuses_another_major_version(
    owned_server: EmbeddedServer, owned_database_url: str, tmp_path: Path
) -> None:
    server_major = int(query(owned_database_url, "SHOW server_version_num")[0][0]) // 10000
    others = sorted(
        (int(p.parent.parent.name), p)
        for p in Path("/usr/lib/postgresql").glob("*/bin/pg_dump")
        if p.parent.parent.name.isdigit() and int(p.parent.parent.name) != server_major
    )
    if not others:  # the version matrix runs the owned server on the one major this machine has a pg_dump of
        pytest.skip(f"no pg_dump of a major other than {server_major} on this machine")
    dump_major, program = others[0]
    with pytest.raises(ConfigError) as caught:
        Migrator.create(owned_database_url, tmp_path / "m").baseline(from_schema=True, pg_dump=str(program))
    assert f"is version {dump_major} but the server is PostgreSQL {server_major}" in caught.value.message
    assert "Install the PostgreSQL" in caught.value.message


def test_baseline_file_rewrites_session_settings() -> None:
    dump = (
        "SET statement_timeout = 0;\nSELECT pg_catalog.set_config('search_path', '', false);\n"
        '\\restrict abc\nCREATE SCHEMA "pgmig";\nCREATE SCHEMA "app";\n\\unrestrict abc\n'
    )
    text = baseline_file(dump, 15, "pgmig")
    assert "SET LOCAL statement_timeout = 0;" in text and "set_config('search_path', '', true)" in text
    assert "\\restrict" not in text and "\\unrestrict" not in text
    assert 'CREATE SCHEMA IF NOT EXISTS "pgmig";' in text and 'CREATE SCHEMA "app";' in text
    assert text.endswith("-- migrate:down\n-- A baseline cannot be reverted: rollback refuses it.\n")
