"""File-name grammar, sections, options and checksums (pure: no database)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from helpers import SCENARIOS

from flask_pgmig.core import files
from flask_pgmig.errors import MigrationFileError, MigrationParseError


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def parse(tmp_path: Path, text: str, name: str = "20260115093000_x.sql") -> files.MigrationFile:
    return files.parse_file(write(tmp_path, name, text))


def test_versions_of_both_widths_sort_as_numbers(tmp_path: Path) -> None:
    write(tmp_path, "20260116_b.sql", "-- migrate:up\nSELECT 1;\n")
    write(tmp_path, "20260115093000_a.sql", "-- migrate:up\nSELECT 1;\n")
    write(tmp_path, "20230322519590_odd_but_valid.sql", "-- migrate:up\nSELECT 1;\n")
    found = files.discover(tmp_path)
    assert [m.version for m in found] == ["20230322519590", "20260115093000", "20260116"]
    assert found[2].key == 20260116000000


def test_every_malformed_name_is_listed_in_one_error(tmp_path: Path) -> None:
    for name in ("2026_users.sql", "20260115_.sql", "20260115-users.sql", "20260115093000_ok.sql"):
        write(tmp_path, name, "-- migrate:up\nSELECT 1;\n")
    write(tmp_path, "README.md", "not a migration")
    write(tmp_path, ".hidden.sql", "not a migration")
    write(tmp_path, "notes.txt", "ignored: does not look like a migration")
    with pytest.raises(MigrationFileError) as caught:
        files.discover(tmp_path)
    message = str(caught.value)
    for bad in ("2026_users.sql", "20260115_.sql", "20260115-users.sql"):
        assert f"'{bad}'" in message
    assert "20260115093000_ok.sql" not in message and "README" not in message and "notes.txt" not in message
    assert len(caught.value.paths) == 3


def test_scenario_with_a_bad_name_is_refused() -> None:
    with pytest.raises(MigrationFileError, match=r"2026_add_things\.sql"):
        files.discover(SCENARIOS / "bad_name")


def test_duplicate_versions_are_refused_even_across_widths(tmp_path: Path) -> None:
    write(tmp_path, "20260115_a.sql", "-- migrate:up\nSELECT 1;\n")
    write(tmp_path, "20260115000000_b.sql", "-- migrate:up\nSELECT 1;\n")
    with pytest.raises(
        MigrationFileError, match=r"share a version: '20260115000000_b\.sql' and '20260115_a\.sql'"
    ):
        files.discover(tmp_path)


def test_unicode_names_are_nfc_normalized(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "20260115093000_café_données.sql")
    write(tmp_path, decomposed, "-- migrate:up\nSELECT 1;\n")
    (migration,) = files.discover(tmp_path)
    assert migration.name == unicodedata.normalize("NFC", "café_données")


def test_missing_directory_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="Run 'pgmig init'"):
        files.discover(tmp_path / "nope", init_hint="pgmig init")


def test_sections_and_options(tmp_path: Path) -> None:
    migration = parse(
        tmp_path,
        "-- a header comment\n-- migrate:up transaction:false lock_timeout:30s statement_timeout:2h\n"
        "CREATE INDEX CONCURRENTLY i ON t (x);\n-- migrate:down lock_timeout:500ms\nDROP INDEX i;\n",
    )
    assert migration.up.options == files.SectionOptions(False, 30_000, 7_200_000)
    assert migration.up.line == 3
    assert migration.down is not None
    assert migration.down.options.lock_timeout_ms == 500 and migration.down.options.transaction
    assert migration.down.sql == "DROP INDEX i;\n" and migration.down.line == 5


def test_markers_inside_strings_comments_and_dollar_bodies_do_not_count() -> None:
    (migration,) = files.discover(SCENARIOS / "dollar_bodies")
    assert migration.down is not None
    assert migration.down.sql.startswith("DROP FUNCTION tagged();")
    assert "$body$" in migration.up.sql and "looks like a marker" in migration.up.sql


def test_marker_inside_block_comment_does_not_count(tmp_path: Path) -> None:
    migration = parse(tmp_path, "-- migrate:up\nSELECT 1;\n/*\n-- migrate:down\n*/\nSELECT 2;\n")
    assert migration.down is None and "SELECT 2" in migration.up.sql


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("CREATE TABLE t (id int);\n", "has no '-- migrate:up' line", None),
        ("-- migrate:down\nDROP TABLE t;\n-- migrate:up\nSELECT 1;\n", "'-- migrate:down' before any", 1),
        (
            "-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n",
            "repeats '-- migrate:up' (first on line 1)",
            3,
        ),
        (
            "-- migrate:up transactoin:false\nSELECT 1;\n",
            "unknown option 'transactoin:false'. Did you mean 'transaction'",
            1,
        ),
        (
            "-- migrate:up\nSELECT 1;\n-- migrate:dwon\nSELECT 2;\n",
            "unknown directive '-- migrate:dwon'. Did you mean '-- migrate:down'",
            3,
        ),
        ("-- migrate:up lock_timeout:soon\nSELECT 1;\n", "not a duration", 1),
        ("-- migrate:up transaction:maybe\nSELECT 1;\n", "sets transaction to 'maybe'", 1),
        (
            "SELECT 0;\n-- migrate:up\nSELECT 1;\n",
            "Line 1 of '20260115093000_x.sql' has SQL before '-- migrate:up' (line 2)",
            1,
        ),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path: Path, text: str, message: str, line: int | None) -> None:
    with pytest.raises(MigrationParseError) as caught:
        parse(tmp_path, text)
    assert message in str(caught.value)
    assert "20260115093000_x.sql" in str(caught.value)
    assert caught.value.line == line


def test_empty_down_means_irreversible_and_empty_up_is_a_noop(tmp_path: Path) -> None:
    irreversible = parse(tmp_path, "-- migrate:up\nDROP TABLE t;\n-- migrate:down\n-- cannot be undone\n")
    assert irreversible.down is None and not irreversible.is_noop
    noop = parse(tmp_path, "-- migrate:up\n-- nothing yet\n-- migrate:down\n", "20260115093001_y.sql")
    assert noop.is_noop and noop.down is not None


def test_dbmate_format_is_accepted(tmp_path: Path) -> None:
    migration = parse(
        tmp_path, "-- migrate:up transaction:false\nALTER TYPE mood ADD VALUE 'meh';\n\n-- migrate:down\n\n"
    )
    assert not migration.transactional and migration.down is None


def test_checksum_ignores_line_endings_and_trailing_whitespace_only() -> None:
    base = files.checksum("CREATE TABLE t (id int);\nSELECT 1;\n")
    assert files.checksum("CREATE TABLE t (id int);  \r\nSELECT 1;\r\n\n") == base
    assert files.checksum("CREATE TABLE t (id bigint);\nSELECT 1;\n") != base
    assert files.checksum("CREATE TABLE t  (id int);\nSELECT 1;\n") != base


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "20260115093000_latin1.sql"
    path.write_bytes("-- migrate:up\nSELECT 'caf\xe9';\n".encode("latin-1"))
    with pytest.raises(MigrationParseError, match="is not valid UTF-8"):
        files.parse_file(path)


def test_python_migration_shape_is_read_without_importing(tmp_path: Path) -> None:
    migration = parse(
        tmp_path,
        "raise SystemExit('must not be imported')\ntransaction = False\n\ndef up(conn):\n    pass\n",
        "20260115093000_backfill.py",
    )
    assert migration.kind == "py" and not migration.transactional and migration.down is None
    with pytest.raises(MigrationParseError, match="no 'def up"):
        parse(tmp_path, "def down(conn):\n    pass\n", "20260115093001_nope.py")


def test_non_ascii_text_above_the_down_marker_keeps_the_sections_apart() -> None:
    # pglast reports token offsets in characters: a byte count would miss the marker after 'café' and run the
    # down section as part of the up section
    source = (
        "-- migrate:up\n-- Ünïcödé comment — with an em dash\nCREATE TABLE t (x text);\n"
        "INSERT INTO t VALUES ('café', '日本語');\n-- migrate:down\nDROP TABLE t;\n"
    )
    up, down = files.parse_sections(source, "x.sql", "x.sql")
    assert "DROP TABLE" not in up.sql and up.sql.rstrip().endswith("'日本語');")
    assert down is not None and down.sql == "DROP TABLE t;\n" and down.line == 6


def test_cosmetic_fingerprint_handles_non_ascii_text() -> None:
    from flask_pgmig.core.plan import sql_fingerprint

    before = "INSERT INTO t VALUES ('café'); -- é\n"
    assert sql_fingerprint(before) == sql_fingerprint("-- ünïcode note\nINSERT INTO t\n  VALUES ('café');")
    assert sql_fingerprint(before) != sql_fingerprint("INSERT INTO t VALUES ('cafe');")


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1;", "-- only\n  -- comments\n", "\n\n-- a\nDROP TABLE t; -- tail\n", ";", "--x\n;\n",
        "/* block */", "-- a\n/* b */\n", "CREATE TABLE t (a int); -- c", "  \t-- indented\n\n",
        "SELECT '-- not a comment';", "-- a\nSELECT $$\n-- b\n$$;",
    ],
)  # fmt: skip
def test_is_blank_sql_agrees_with_the_lexer(text: str) -> None:
    from flask_pgmig.core.sql import scan_tokens

    tokens = scan_tokens(text)
    by_lexer = tokens is not None and all(t.name in ("SQL_COMMENT", "C_COMMENT") for t in tokens)
    assert files.is_blank_sql(text) is by_lexer


def test_a_file_where_nothing_spans_lines_is_parsed_without_the_lexer(monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_pgmig.core import sql

    def no_lexer(text: str) -> None:
        raise AssertionError("the lexer ran")

    monkeypatch.setattr(sql, "scan_tokens", no_lexer)
    up, down = files.parse_sections(
        "-- migrate:up lock_timeout:2s\nCREATE TABLE t (id int DEFAULT now());\n  -- migrate:down\nDROP TABLE t;\n",
        "x.sql", "x.sql",
    )  # fmt: skip
    assert (up.sql, up.line, up.options.lock_timeout_ms) == ("CREATE TABLE t (id int DEFAULT now());\n", 2, 2000)
    assert down is not None and down.sql == "DROP TABLE t;\n" and down.line == 4
    with pytest.raises(AssertionError, match="the lexer ran"):  # a string could hide a marker: the lexer decides
        files.parse_sections("-- migrate:up\nSELECT 'x\n-- migrate:down\n';\n", "x.sql", "x.sql")


def test_a_marker_inside_a_string_or_body_is_not_a_marker() -> None:
    up, down = files.parse_sections(
        "-- migrate:up\nSELECT 'x\n-- migrate:down\n';\nDO $$ BEGIN\n-- migrate:down\nEND $$;\n", "x.sql", "x.sql"
    )
    assert down is None and up.sql.count("-- migrate:down") == 2
