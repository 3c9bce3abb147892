"""Reading each source format (pure: no database): order, sections, transaction modes and every quirk."""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_pgmig.core.adopt import read_source
from flask_pgmig.core.adopt.convert import convert
from flask_pgmig.core.adopt.flyway import version_key
from flask_pgmig.errors import ConfigError, MigrationFileError, MigrationParseError


def tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path -> text) under root and return root."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def findings(migration: object) -> str:
    return " | ".join(f.message for f in migration.findings)  # type: ignore[attr-defined]


# -- dbmate ----------------------------------------------------------------------------------------------------
def test_dbmate_sections_options_and_order(tmp_path: Path) -> None:
    src = tree(tmp_path, {
        "20230102000000_index.sql": "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
                                    "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY i;\n",
        "20230101000000_create.sql": "-- migrate:up\nCREATE TABLE t (a int);\n-- migrate:down\nDROP TABLE t;\n",
        "20230103000000_note.sql": "-- migrate:up\n-- nothing to do any more\n-- migrate:down\n",
        "schema.sql": "-- dbmate dump, not a migration\n",
    })  # fmt: skip
    source = read_source("dbmate", src)
    assert [m.source_id for m in source.migrations] == ["20230101000000", "20230102000000", "20230103000000"]
    create, index, note = source.migrations
    assert create.up.sql == "CREATE TABLE t (a int);\n" and create.down is not None
    assert create.down.sql == "DROP TABLE t;\n"
    assert index.up.transaction is False and index.down is not None and index.down.transaction is False
    assert "schema.sql" in source.ignored
    assert note.up.sql == "-- nothing to do any more\n"


def test_dbmate_unknown_option_is_reported_and_missing_up_refused(tmp_path: Path) -> None:
    tree(tmp_path / "a", {"1_x.sql": "-- migrate:up foo:bar\nSELECT 1;\n"})
    (migration,) = read_source("dbmate", tmp_path / "a").migrations
    assert "'foo:bar' has no equivalent" in findings(migration)
    tree(tmp_path / "b", {"1_x.sql": "CREATE TABLE t (a int);\n"})
    with pytest.raises(MigrationParseError, match=r"'1_x.sql' has no '-- migrate:up' line"):
        read_source("dbmate", tmp_path / "b")


# -- golang-migrate and sqlx -----------------------------------------------------------------------------------
def test_golang_migrate_numeric_order_pairs_and_transaction_quirks(tmp_path: Path) -> None:
    src = tree(tmp_path, {
        "10_ten.up.sql": "BEGIN;\nCREATE TABLE ten (a int);\nCOMMIT;\n",
        "10_ten.down.sql": "DROP TABLE ten;\n",
        "2_two.up.sql": "CREATE INDEX CONCURRENTLY two_i ON ten (a);\n",
        "2_two.down.sql": "DROP INDEX CONCURRENTLY two_i;\n",
        "1_one.up.sql": "CREATE TABLE one (a int);\n",
        "README.md": "notes\n",
    })  # fmt: skip
    source = read_source("golang-migrate", src)
    assert [m.source_id for m in source.migrations] == ["1", "2", "10"]
    one, two, ten = convert(source).migrations
    assert [c.file_name for c in (one, two, ten)] == [
        "00000000000001_one.sql", "00000000000002_two.sql", "00000000000010_ten.sql",
    ]  # fmt: skip
    assert one.source.down is None and "-- The source has no down migration" in one.text
    assert not two.transactional and "-- migrate:up transaction:false" in two.text
    assert "-- migrate:down transaction:false" in two.text
    assert "BEGIN" not in ten.text and "COMMIT" not in ten.text and "CREATE TABLE ten" in ten.text
    assert "removed the BEGIN/COMMIT" in findings(ten)


def test_sqlx_no_transaction_and_simple_files(tmp_path: Path) -> None:
    src = tree(tmp_path, {
        "20240101000000_users.sql": "CREATE TABLE users (id int);\n",
        "20240102000000_index.up.sql": "-- no-transaction\nCREATE INDEX CONCURRENTLY u ON users (id);\n",
        "20240102000000_index.down.sql": "DROP INDEX u;\n",
    })  # fmt: skip
    source = read_source("sqlx", src)
    users, index = source.migrations
    assert users.down is None and index.up.transaction is False
    assert index.up.sql == "CREATE INDEX CONCURRENTLY u ON users (id);\n"
    # golang-migrate has no simple files: the same folder read as golang-migrate ignores it
    assert "20240101000000_users.sql" in read_source("golang-migrate", src).ignored


# -- goose -------------------------------------------------------------------------------------------------------
GOOSE_FUNCTION = """-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at = now();
  RETURN NEW;
END;
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION touch();
"""


def test_goose_annotations(tmp_path: Path) -> None:
    src = tree(tmp_path, {
        "00002_function.sql": GOOSE_FUNCTION,
        "00001_create.sql": "-- +goose Up\nCREATE TABLE t (a int);\n-- +goose Down\nDROP TABLE t;\n",
        "00003_index.sql": "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n"
                           "-- +goose Down\nDROP INDEX CONCURRENTLY i;\n",
        "00004_envsub.sql": "-- +goose ENVSUB ON\n-- +goose Up\nCREATE ROLE ${APP_ROLE};\n-- +goose ENVSUB OFF\n",
        "00005_backfill.go": "package migrations\n",
        "00010_later.sql": "-- +goose up\nSELECT 1;\n",
    })  # fmt: skip
    source = read_source("goose", src)
    assert [m.source_id for m in source.migrations] == ["1", "2", "3", "4", "5", "10"]
    conversion = convert(source)
    _, function, index, envsub, go, later = conversion.migrations
    assert "StatementBegin" not in function.text and "RETURN NEW;" in function.text
    assert function.transactional and not index.transactional
    assert "-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY i;" in index.text
    assert "substituted environment variables" in findings(envsub)
    assert "-- WARNING: 00004_envsub.sql:3:" in envsub.text
    assert "Go migration cannot be converted" in findings(go) and go.text.count("-- WARNING") == 1
    assert later.source.up.sql == "SELECT 1;\n"  # annotations are case-insensitive, as in goose


def test_goose_without_up_is_refused(tmp_path: Path) -> None:
    tree(tmp_path, {"1_x.sql": "CREATE TABLE t (a int);\n"})
    with pytest.raises(MigrationParseError, match=r"has no '-- \+goose Up' annotation"):
        read_source("goose", tmp_path)


# -- Flyway ------------------------------------------------------------------------------------------------------
def test_flyway_version_order_undo_repeatable_and_subfolders(tmp_path: Path) -> None:
    src = tree(tmp_path, {
        "V1__init.sql": "CREATE TABLE t (a int);\n",
        "V1_10__ten.sql": "ALTER TABLE t ADD b int;\n",
        "V1.2__two.sql": "ALTER TABLE t ADD c int;\n",
        "U1.2__two.sql": "ALTER TABLE t DROP c;\n",
        "sub/V2__deeper.sql": "CREATE INDEX CONCURRENTLY ti ON t (a);\n",
        "V3__conf.sql": "VACUUM t;\n",
        "V3__conf.sql.conf": "executeInTransaction=false\n",
        "R__view.sql": "CREATE OR REPLACE VIEW v AS SELECT a FROM t WHERE a > ${min};\n",
    })  # fmt: skip
    source = read_source("flyway", src)
    assert [m.source_id for m in source.migrations] == ["1", "1.2", "1.10", "2", "3", "R__view"]
    two = source.by_id()["1.2"]
    assert two.down is not None and two.down.sql == "ALTER TABLE t DROP c;\n"
    assert source.by_id()["3"].up.transaction is False
    conversion = convert(source)
    assert [c.version for c in conversion.migrations] == [f"{n:014d}" for n in range(1, 7)]
    deeper = conversion.by_source_id()["2"]
    assert not deeper.transactional and "sub/V2__deeper.sql" in deeper.text
    view = conversion.by_source_id()["R__view"]
    assert "repeatable migration" in findings(view) and "Flyway placeholder" in findings(view)


def test_flyway_version_key() -> None:
    assert version_key("1.2") < version_key("1.10") < version_key("2")
    assert version_key("1.0") == version_key("1") and version_key("1_1") == version_key("1.1")


def test_flyway_duplicate_version_is_refused(tmp_path: Path) -> None:
    tree(tmp_path, {"V1__a.sql": "SELECT 1;\n", "V1.0__b.sql": "SELECT 2;\n"})
    with pytest.raises(MigrationFileError, match="have the same Flyway version"):
        read_source("flyway", tmp_path)


# -- diesel ------------------------------------------------------------------------------------------------------
def test_diesel_folders_mixed_timestamps_and_metadata(tmp_path: Path) -> None:
    src = tree(tmp_path, {
        "00000000000000_diesel_initial_setup/up.sql": "-- diesel setup\nCREATE FUNCTION f() RETURNS int "
                                                      "LANGUAGE sql AS 'SELECT 1';\n",
        "00000000000000_diesel_initial_setup/down.sql": "DROP FUNCTION f();\n",
        "2017-08-31-210424_create_posts/up.sql": "CREATE TABLE posts (id int);\n",
        "2017-08-31-210424_create_posts/down.sql": "DROP TABLE posts;\n",
        "20170901000000_index/up.sql": "CREATE INDEX CONCURRENTLY p ON posts (id);\n",
        "20170901000000_index/down.sql": "DROP INDEX p;\n",
        "20170901000000_index/metadata.toml": "run_in_transaction = false\n",
        "2017-08-30-000000_earlier/up.sql": "SELECT 1;\n",
        ".keep": "",
    })  # fmt: skip
    source = read_source("diesel", src)
    assert [m.source_id for m in source.migrations] == [
        "00000000000000", "20170830000000", "20170831210424", "20170901000000",
    ]  # fmt: skip
    assert source.migrations[-1].up.transaction is False
    versions = [c.version for c in convert(source).migrations]
    assert versions == ["00000000000000", "20170830000000", "20170831210424", "20170901000000"]


def test_unknown_format_and_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'liquibase' is not a format"):
        read_source("liquibase", tmp_path)
    with pytest.raises(MigrationFileError, match="does not exist"):
        read_source("goose", tmp_path / "nope")
    with pytest.raises(MigrationFileError, match="No dbmate migrations were found"):
        read_source("dbmate", tmp_path)
