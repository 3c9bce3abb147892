"""Tests for flask_pgmig.core.sql: splitting, classification and syntax errors (no database needed)."""

from __future__ import annotations

import time

import pytest

from flask_pgmig.core.sql import (
    SqlSyntaxError,
    Statement,
    created_index_name,
    is_blank,
    is_concurrently,
    non_transactional_reason,
    position_to_line_column,
    split_statements,
    syntax_error,
    transaction_control,
)


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def check_positions(sql: str) -> None:
    """Every statement must be found verbatim at its start, and line/column must agree with start."""
    for stmt in split_statements(sql):
        assert sql[stmt.start : stmt.start + len(stmt.text)] == stmt.text
        assert position_to_line_column(sql, stmt.start) == (stmt.line, stmt.column)


# --- split_statements ---------------------------------------------------------------------------------------


def test_split_simple_with_positions() -> None:
    sql = "CREATE TABLE a (id int);\n\n  INSERT INTO a VALUES (1);   SELECT 2;\n"
    assert split_statements(sql) == [
        Statement("CREATE TABLE a (id int)", 0, 1, 1),
        Statement("INSERT INTO a VALUES (1)", 28, 3, 3),
        Statement("SELECT 2", 56, 3, 31),
    ]


def test_last_statement_without_semicolon() -> None:
    sql = "SELECT 1;\nSELECT 2\n"
    assert split_statements(sql) == [Statement("SELECT 1", 0, 1, 1), Statement("SELECT 2", 10, 2, 1)]


def test_dollar_quotes_keep_semicolons_and_section_markers() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS int AS $$\n"
        "BEGIN\n"
        "  PERFORM 1;\n"
        "-- migrate:down\n"
        "  RETURN 1;\n"
        "END $$ LANGUAGE plpgsql;\n"
        "DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$;\n"
        "SELECT $a$ $$ ; $a$;"
    )
    result = split_statements(sql)
    assert [s.text for s in result] == [
        "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  PERFORM 1;\n-- migrate:down\n  RETURN 1;\nEND $$ "
        "LANGUAGE plpgsql",
        "DO $body$ BEGIN RAISE NOTICE 'x;y'; END $body$",
        "SELECT $a$ $$ ; $a$",
    ]
    assert [(s.line, s.column) for s in result] == [(1, 1), (7, 1), (8, 1)]
    check_positions(sql)


def test_strings_and_quoted_identifiers() -> None:
    sql = "SELECT E'it\\'s; fine';\nSELECT 'a''b;c';\nSELECT \"we;ird\"\"x\" FROM t;\nSELECT U&'d\\0061;'"
    assert texts(sql) == [
        "SELECT E'it\\'s; fine'",
        "SELECT 'a''b;c'",
        'SELECT "we;ird""x" FROM t',
        "SELECT U&'d\\0061;'",
    ]
    assert [s.line for s in split_statements(sql)] == [1, 2, 3, 4]


def test_nested_block_comments_and_comments_are_dropped_around_statements() -> None:
    sql = "/* outer /* inner ; */ still comment ; */ SELECT 1 -- trailing ;\n;\n-- only a comment;\nSELECT /* in ; */ 2"
    assert split_statements(sql) == [
        Statement("SELECT 1", 42, 1, 43),
        Statement("SELECT /* in ; */ 2", 86, 4, 1),
    ]


@pytest.mark.parametrize(
    "sql", ["", "   \n\t", ";;;", " ; ; ", "-- just a comment", "/* a */ -- b\n ; /* c ; */"]
)
def test_empty_and_comment_only_input(sql: str) -> None:
    assert split_statements(sql) == []
    assert is_blank(sql)


def test_not_blank() -> None:
    assert not is_blank("-- comment\nSELECT 1")
    assert not is_blank("/* unterminated comment")  # the server would reject it: not a silent no-op


def test_parentheses_do_not_split_like_psql() -> None:
    sql = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));SELECT 3"
    assert texts(sql) == [
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))",
        "SELECT 3",
    ]


def test_sql_standard_function_body_is_one_statement() -> None:
    sql = (
        "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT 1;\n"
        "  SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END;\n"
        "END;\n"
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END;\n"
        "BEGIN;\n"
        "CALL p();\n"
        "END;"
    )
    result = split_statements(sql)
    assert [s.text for s in result] == [
        "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n"
        "  SELECT CASE WHEN x > 0 THEN 1 ELSE 2 END;\nEND",
        "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END",
        "BEGIN",
        "CALL p()",
        "END",
    ]
    assert [s.line for s in result] == [1, 6, 7, 8, 9]


def test_multibyte_characters_before_statements() -> None:
    sql = "-- héllo wörld 😀\nINSERT INTO t VALUES ('é;ü'); /* ß */ SELECT 'naïve';\n  SELECT 3"
    assert split_statements(sql) == [
        Statement("INSERT INTO t VALUES ('é;ü')", 17, 2, 1),
        Statement("SELECT 'naïve'", 55, 2, 39),
        Statement("SELECT 3", 73, 3, 3),
    ]
    check_positions(sql)


def test_non_ascii_identifiers_and_dollar_tags() -> None:
    # Different non-ASCII tags must not close each other.
    sql = "SELECT $é$ a; $ü$ b; $é$ AS café;\nSELECT 1"
    assert texts(sql) == ["SELECT $é$ a; $ü$ b; $é$ AS café", "SELECT 1"]
    check_positions(sql)


def test_crlf_line_endings() -> None:
    sql = "SELECT 1;\r\n\r\nSELECT 2;\r\n"
    assert split_statements(sql) == [Statement("SELECT 1", 0, 1, 1), Statement("SELECT 2", 13, 3, 1)]


def test_unterminated_string_keeps_the_rest_as_one_statement() -> None:
    sql = "SELECT 1;\nSELECT 'abc;\nSELECT 2;\n"
    assert split_statements(sql) == [
        Statement("SELECT 1", 0, 1, 1),
        Statement("SELECT 'abc;\nSELECT 2;", 10, 2, 1),
    ]


def test_split_tolerates_syntax_errors() -> None:
    assert texts("SELEC 1 FORM x; CREATE TABLE (;\nSELECT 2") == [
        "SELEC 1 FORM x",
        "CREATE TABLE (;\nSELECT 2",
    ]
    assert texts("SELEC 1 FORM x; SELECT 2") == ["SELEC 1 FORM x", "SELECT 2"]


def test_large_non_ascii_data_migration_is_fast() -> None:
    # pglast's own offset conversion is quadratic in the number of multi-byte characters.
    rows = ",\n".join(f"({i}, 'café crème n° {i}')" for i in range(20000))
    sql = f"INSERT INTO t (id, name) VALUES {rows};\nCREATE INDEX CONCURRENTLY ON t (name);\n"
    began = time.perf_counter()
    result = split_statements(sql)
    assert time.perf_counter() - began < 5
    assert [s.line for s in result] == [1, 20001]
    assert result[1].text == "CREATE INDEX CONCURRENTLY ON t (name)"
    assert non_transactional_reason(result[0]) is None
    assert non_transactional_reason(result[1]) == "CREATE INDEX CONCURRENTLY"


# --- positions and syntax errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "expected"),
    [(0, (1, 1)), (3, (1, 4)), (4, (2, 1)), (6, (2, 3)), (7, (3, 1)), (99, (3, 3)), (-5, (1, 1))],
)
def test_position_to_line_column(index: int, expected: tuple[int, int]) -> None:
    assert position_to_line_column("abc\néü\nxy", index) == expected


def test_syntax_error_none_for_valid_sql() -> None:
    assert syntax_error("CREATE TABLE t (id int);\nSELECT 'é' FROM t;") is None
    assert syntax_error("-- nothing") is None


def test_syntax_error_ascii() -> None:
    assert syntax_error("SELECT 1;\nSELECT * form t;") == SqlSyntaxError(
        'syntax error at or near "form"', 2, 10, "SELECT * form t;"
    )


def test_syntax_error_after_multibyte_characters() -> None:
    # If the position were a UTF-8 byte offset, the column would be off by the extra bytes of é, ü and 😀.
    sql = "-- créé par Jürgen 😀\nSELECT 'ü😀é', * form t;"
    assert syntax_error(sql) == SqlSyntaxError(
        'syntax error at or near "form"', 2, 17, "SELECT 'ü😀é', * form t;"
    )
    sql = "INSERT INTO t VALUES ('ééééé');\n  /* ü */ SELEC 1;"
    assert syntax_error(sql) == SqlSyntaxError('syntax error at or near "SELEC"', 2, 11, "/* ü */ SELEC 1;")


def test_syntax_error_at_end_of_input() -> None:
    assert syntax_error("SELECT 1;\nSELECT 'ü' +\n\n") == SqlSyntaxError(
        "syntax error at end of input", 2, 13, "SELECT 'ü' +"
    )


def test_syntax_error_unterminated_string() -> None:
    assert syntax_error("SELECT 'é';\nSELECT 'abc") == SqlSyntaxError(
        'unterminated quoted string at or near "\'abc"', 2, 8, "SELECT 'abc"
    )


def test_statement_position_maps_back_to_file() -> None:
    sql = "-- ü\nSELECT 1;\nSELECT 'é', nope FROM t;"
    stmt = split_statements(sql)[1]
    server_position = 13  # 1-based character position of "nope" as PostgreSQL would report it
    assert position_to_line_column(sql, stmt.start + server_position - 1) == (3, 13)


# --- non_transactional_reason and is_concurrently ---------------------------------------------------------------

NON_TRANSACTIONAL = [
    ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
    ("create unique index concurrently if not exists i on s.t (a)", "CREATE INDEX CONCURRENTLY"),
    ("DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX CONCURRENTLY"),
    ("REINDEX INDEX CONCURRENTLY i", "REINDEX ... CONCURRENTLY"),
    ("REINDEX (CONCURRENTLY, VERBOSE) TABLE t", "REINDEX ... CONCURRENTLY"),
    ("REINDEX SCHEMA s", "REINDEX SCHEMA"),
    ("REINDEX DATABASE d", "REINDEX DATABASE"),
    ("REINDEX SYSTEM", "REINDEX SYSTEM"),
    ("VACUUM", "VACUUM"),
    ("VACUUM (ANALYZE, VERBOSE) t", "VACUUM"),
    ("ALTER SYSTEM SET work_mem = '64MB'", "ALTER SYSTEM"),
    ("CREATE DATABASE d", "CREATE DATABASE"),
    ("DROP DATABASE IF EXISTS d", "DROP DATABASE"),
    ("CREATE TABLESPACE ts LOCATION '/data'", "CREATE TABLESPACE"),
    ("DROP TABLESPACE ts", "DROP TABLESPACE"),
    ("ALTER TABLE t DETACH PARTITION p CONCURRENTLY", "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", "CREATE SUBSCRIPTION"),
    ("DROP SUBSCRIPTION s", "DROP SUBSCRIPTION"),
    ("ALTER SUBSCRIPTION s REFRESH PUBLICATION", "ALTER SUBSCRIPTION ... REFRESH"),
    ("ALTER SUBSCRIPTION s SET PUBLICATION p", "ALTER SUBSCRIPTION ... PUBLICATION with refresh"),
    ("CLUSTER", "CLUSTER"),
    ("CLUSTER VERBOSE", "CLUSTER"),
    ("DISCARD ALL", "DISCARD ALL"),
    ("ALTER DATABASE d SET TABLESPACE ts", "ALTER DATABASE ... SET TABLESPACE"),
    (
        "/* why */ CREATE\n-- comment between words\nINDEX CONCURRENTLY i ON t (a)",
        "CREATE INDEX CONCURRENTLY",
    ),
]

TRANSACTIONAL = [
    "CREATE INDEX i ON t (a)",
    "CREATE UNIQUE INDEX IF NOT EXISTS i ON t (a)",
    "DROP INDEX i",
    "REINDEX TABLE t",
    "REINDEX INDEX i",
    "REINDEX (CONCURRENTLY false) TABLE t",
    "ANALYZE t",
    "ALTER TABLE t DETACH PARTITION p",
    "ALTER TABLE t ADD COLUMN concurrently_seen boolean",
    "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (connect = false)",
    "CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p WITH (create_slot = false)",
    "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)",
    "ALTER SUBSCRIPTION s DISABLE",
    "CLUSTER t USING i",
    "DISCARD PLANS",
    "ALTER DATABASE d SET work_mem = '64MB'",
    "REFRESH MATERIALIZED VIEW CONCURRENTLY m",  # allowed in a transaction, unlike CREATE INDEX CONCURRENTLY
    "CALL p()",
    "CREATE TABLE vacuum_log (note text DEFAULT 'VACUUM; CREATE INDEX CONCURRENTLY')",
    "SELECT 'VACUUM'",
    "-- VACUUM\nSELECT 1",
    "DO $$ BEGIN EXECUTE 'VACUUM'; END $$",
    "INSERT INTO t VALUES ('CREATE DATABASE x')",
    "BEGIN",
]


@pytest.mark.parametrize(("sql", "reason"), NON_TRANSACTIONAL)
def test_non_transactional(sql: str, reason: str) -> None:
    assert non_transactional_reason(sql) == reason
    [stmt] = split_statements(sql + ";")
    assert non_transactional_reason(stmt) == reason


@pytest.mark.parametrize("sql", TRANSACTIONAL)
def test_transactional(sql: str) -> None:
    assert non_transactional_reason(sql) is None


def test_statement_starting_with_a_comment_is_still_parsed() -> None:
    # Statements built by hand may keep a leading comment; the cheap first-word filter must not skip them.
    assert non_transactional_reason(Statement("/* c */ VACUUM t", 0, 1, 1)) == "VACUUM"
    assert non_transactional_reason(Statement("/* c */ ANALYZE t", 0, 1, 1)) is None


def test_non_transactional_in_a_longer_text_names_the_first() -> None:
    sql = "CREATE TABLE t (a int);\nVACUUM t;\nCREATE INDEX CONCURRENTLY i ON t (a);"
    assert non_transactional_reason(sql) == "VACUUM"
    assert [non_transactional_reason(s) for s in split_statements(sql)] == [
        None,
        "VACUUM",
        "CREATE INDEX CONCURRENTLY",
    ]


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a) WHERE frobnicate blah", "CREATE INDEX CONCURRENTLY"),
        ("VACUUM FULL garbage garbage (", "VACUUM"),
        ("REINDEX TABLE CONCURRENTLY t, u", "REINDEX ... CONCURRENTLY"),
        ("CREATE DATABASE d WITH WITH", "CREATE DATABASE"),
        ("CREATE TABLE t (a int, note text DEFAULT 'VACUUM' garbage)", None),
    ],
)
def test_unparseable_statements_fall_back_to_keywords(sql: str, reason: str | None) -> None:
    assert syntax_error(sql) is not None
    assert non_transactional_reason(sql) == reason


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", True),
        ("DROP INDEX CONCURRENTLY i", True),
        ("REINDEX TABLE CONCURRENTLY t", True),
        ("REFRESH MATERIALIZED VIEW CONCURRENTLY m", True),
        ("ALTER TABLE t DETACH PARTITION p CONCURRENTLY", True),
        ("CREATE INDEX i ON t (a)", False),
        ("REFRESH MATERIALIZED VIEW m", False),
        ("REINDEX (CONCURRENTLY off) TABLE t", False),
        ("ALTER TABLE t DETACH PARTITION p", False),
        ("SELECT 'CREATE INDEX CONCURRENTLY'", False),
        ("VACUUM", False),
    ],
)
def test_is_concurrently(sql: str, expected: bool) -> None:
    assert is_concurrently(sql) is expected


# --- transaction_control ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("BEGIN", "BEGIN"),
        ("begin transaction isolation level serializable", "BEGIN"),
        ("START TRANSACTION", "START TRANSACTION"),
        ("COMMIT", "COMMIT"),
        ("END", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
        ("ABORT", "ROLLBACK"),
        ("SAVEPOINT s", "SAVEPOINT"),
        ("RELEASE SAVEPOINT s", "RELEASE SAVEPOINT"),
        ("ROLLBACK TO SAVEPOINT s", "ROLLBACK TO SAVEPOINT"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
        ("SELECT 1", None),
        ("PREPARE q AS SELECT 1", None),
        ("CREATE TABLE begin_log (id int)", None),
        ("DO $$ BEGIN COMMIT; END $$", None),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", None),
        ("BEGIN WORK garbage garbage", "BEGIN"),  # does not parse: keyword fallback
    ],
)
def test_transaction_control(sql: str, expected: str | None) -> None:
    assert transaction_control(sql) == expected


def test_transaction_control_in_a_section() -> None:
    statements = split_statements("BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;")
    assert [transaction_control(s) for s in statements] == ["BEGIN", None, "COMMIT"]
    assert transaction_control("CREATE TABLE t (a int);\nCOMMIT;") == "COMMIT"


# --- created_index_name -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE INDEX CONCURRENTLY users_email ON users (email)", (None, "users_email")),
        (
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS Users_Email ON app.users (email)",
            ("app", "users_email"),
        ),
        ('CREATE INDEX "Idx é;x" ON "My Schema"."T" (a)', ("My Schema", "Idx é;x")),
        ("CREATE INDEX i ON ONLY s.parent (a)", ("s", "i")),
        ("CREATE INDEX ON t (a)", None),
        ("DROP INDEX CONCURRENTLY i", None),
        ("CREATE TABLE i (a int)", None),
        ("CREATE INDEX CONCURRENTLY i ON t (a) garbage", None),
    ],
)
def test_created_index_name(sql: str, expected: tuple[str | None, str] | None) -> None:
    assert created_index_name(sql) == expected


def test_created_index_name_from_statement() -> None:
    sql = "-- é\nCREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON public.t (a);"
    stmt = split_statements(sql)[1]
    assert stmt.line == 3
    assert created_index_name(stmt) == ("public", "t_a")


# --- splitting without the lexer ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "CREATE TABLE t (id int);",
        "  CREATE TABLE t (id int)  ;\n\n  CREATE INDEX t_id ON t (id)\n",
        "CREATE TABLE t (id int);;\n;ALTER TABLE t ADD COLUMN n int;",
        "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); INSERT INTO u VALUES (2));\nSELECT 1;",
        "SELECT ((1);\nSELECT 2);\nSELECT 3;",  # unbalanced parentheses: split as the lexer-based path does
        "\n\t\r\n",
        "",
        "ALTER TABLE t\n    ADD COLUMN a int,\n    ADD COLUMN b int;\nDROP TABLE u",
    ],
)
def test_sql_without_quotes_or_comments_splits_as_the_lexer_does(text: str) -> None:
    from flask_pgmig.core import sql

    assert not sql._needs_lexer(text)
    assert sql._statements(text, sql._plain_spans(text)) == sql._split_lexed(text)
    assert split_statements(text) == list(sql._split_lexed(text))


@pytest.mark.parametrize(
    "text",
    [
        "SELECT ';'", 'SELECT 1 AS ";"', "SELECT $$;$$", "SELECT 1 -- ;", "SELECT /* ; */ 1", "SELECT $1",
        "CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END", "CREATE PROCEDURE p() BEGIN ATOMIC END",
        "SELECT 'é'", "CREATE TABLE café (id int)", "SELECT 1\f;", "CREATE TABLE \u212a (id int)",
        "CREATE OR REPLACE Function f() RETURNS int BEGIN ATOMIC SELECT 1; END",
    ],
)
def test_sql_the_lexer_must_read_is_never_split_without_it(text: str) -> None:
    from flask_pgmig.core import sql

    assert sql._needs_lexer(text)
