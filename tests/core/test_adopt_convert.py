"""From a source set to our files: versions, headers, templating, validation, writing."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_adopt_formats import tree

from flask_pgmig.core.adopt import read_source
from flask_pgmig.core.adopt.convert import convert, map_versions, write
from flask_pgmig.core.files import discover
from flask_pgmig.errors import MigrationFileError, MigrationParseError


def test_versions_keep_numbers_when_they_fit_else_count() -> None:
    assert map_versions(["1", "2", "10"]) == ["00000000000001", "00000000000002", "00000000000010"]
    assert map_versions(["20230101000000", "20230102000000"]) == ["20230101000000", "20230102000000"]
    # not numbers (Flyway dots, Alembic ids), too long, or not increasing in the source order: counted
    assert map_versions(["1", "1.1", "2"]) == ["00000000000001", "00000000000002", "00000000000003"]
    assert map_versions(["ae1027a6acf", "27c6a30d7c24"]) == ["00000000000001", "00000000000002"]
    assert map_versions(["123456789012345", "123456789012346"]) == ["00000000000001", "00000000000002"]
    assert map_versions(["20", "100"]) == ["00000000000020", "00000000000100"]
    assert map_versions(["100", "20"]) == ["00000000000001", "00000000000002"]  # dbmate's name order


def test_written_files_parse_keep_order_ids_and_no_ops(tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {
        "1_create.up.sql": "CREATE TABLE t (a text);\n",
        "1_create.down.sql": "DROP TABLE t;\n",
        "2_comment_only.up.sql": "-- this change was reverted upstream\n/* kept for the record */\n",
        "2_comment_only.down.sql": "",
        "3_data.up.sql": "INSERT INTO t VALUES ('Gruesse');\n",
        "3_data.down.sql": "DELETE FROM t WHERE a <> 'Grüße, 東京';\n",
    })  # fmt: skip
    conversion = convert(read_source("golang-migrate", src))
    target = tmp_path / "migrations"
    result = write(conversion, target)
    assert [p.name for p in result.written] == [c.file_name for c in conversion.migrations]
    files = discover(target)
    assert [f.version for f in files] == ["00000000000001", "00000000000002", "00000000000003"]
    assert files[1].is_noop and not files[0].is_noop
    assert files[2].down is not None and files[2].down.sql == "DELETE FROM t WHERE a <> 'Grüße, 東京';\n"
    first_lines = files[0].source.splitlines()[:2]
    assert first_lines == [
        "-- Imported from golang-migrate by flask-pgmig 0.1.0: 1_create.up.sql, 1_create.down.sql",
        "-- golang-migrate id: 1",
    ]
    assert "-- Import point: the last migration imported from golang-migrate (3)." in files[2].source
    assert conversion.import_point == "3"


def test_templating_is_reported_in_the_report_and_the_file(tmp_path: Path) -> None:
    src = tree(tmp_path, {
        "1_vars.up.sql": "\\set owner app\nALTER TABLE t OWNER TO :owner;\nSELECT 'not :a variable', x::int "
                         "FROM t;\nGRANT SELECT ON t TO {{ .Role }};\n",
    })  # fmt: skip
    (converted,) = convert(read_source("golang-migrate", src)).migrations
    messages = [(f.line, f.message.split(" is copied")[0]) for f in converted.findings]
    assert messages == [
        (1, "a psql meta-command"), (2, "a psql variable (':name')"), (4, "a Go template expression ('{{ ... }}')"),
    ]  # fmt: skip
    assert converted.text.count("-- WARNING: 1_vars.up.sql:") == 3


def test_write_refuses_to_overwrite_and_repeats_cleanly(tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"1_a.up.sql": "SELECT 1;\n", "2_b.up.sql": "SELECT 2;\n"})
    conversion = convert(read_source("golang-migrate", src))
    target = tmp_path / "migrations"
    write(conversion, target)
    again = write(conversion, target)
    assert again.written == () and len(again.unchanged) == 2
    (target / "00000000000002_b.sql").write_text("-- migrate:up\nSELECT 3;\n", encoding="utf-8")
    with pytest.raises(MigrationFileError, match=r"already has different files .*'00000000000002_b.sql'"):
        write(conversion, target)


def test_every_file_reads_back_as_written(tmp_path: Path) -> None:
    """The import checks each file with our own parser: the up it finds must be the up it wrote."""
    src = tree(
        tmp_path, {"1_data.up.sql": "INSERT INTO t VALUES ('café');\n", "1_data.down.sql": "DELETE FROM t;\n"}
    )
    try:
        conversion = convert(read_source("golang-migrate", src))
    except MigrationParseError as error:  # core/files.py compares byte offsets with character offsets
        assert "does not read back as written" in error.message and "1_data.up.sql" in error.message
    else:
        write(conversion, tmp_path / "m")
        (parsed,) = discover(tmp_path / "m")
        assert parsed.up.sql == "INSERT INTO t VALUES ('café');\n" and parsed.down is not None


def test_an_empty_down_is_reported_as_irreversible(tmp_path: Path) -> None:
    src = tree(tmp_path, {"1_x.sql": "-- +goose Up\nCREATE TABLE t (a int);\n-- +goose Down\n-- nothing\n"})
    (converted,) = convert(read_source("goose", src)).migrations
    assert any("the down section is empty: rollback refuses" in f.message for f in converted.findings)
    write(convert(read_source("goose", src)), tmp_path / "m")
    assert discover(tmp_path / "m")[0].down is None
