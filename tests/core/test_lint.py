"""Tests for ``check`` (flask_pgmig.core.lint): structure, syntax, transactions, the unsafe-DDL rules, suppression.

No database: ``check`` is offline. Each rule has a triggering and a non-triggering case; the scenario folders
``lint_unsafe`` (one classic unsafe form per rule) and ``lint_safe`` (the safe forms) are checked as a whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SCENARIOS

from flask_pgmig.core.lint import CheckReport, Finding, check_directory
from flask_pgmig.core.lint_rules import RULES
from flask_pgmig.errors import MigrationFileError

BASE = """-- migrate:up
CREATE TYPE order_status AS ENUM ('new', 'paid');
CREATE TABLE users (id bigint PRIMARY KEY, email varchar(100), name text, age integer, legacy text);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, status order_status, total numeric(10, 2));
CREATE MATERIALIZED VIEW order_totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;
CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
ALTER TABLE users ADD CONSTRAINT users_name_nn CHECK (name IS NOT NULL) NOT VALID;

-- migrate:down
DROP TABLE events, orders, users CASCADE;
DROP TYPE order_status;
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def lint_one(tmp_path: Path, up: str, *, options: str = "", down: str = "SELECT 1;\n") -> CheckReport:
    """Check BASE plus one migration whose up section is ``up``; report on that migration only."""
    write(tmp_path / "m", "20260101000000_base.sql", BASE)
    write(
        tmp_path / "m", "20260201000000_change.sql", f"-- migrate:up {options}\n{up}\n-- migrate:down\n{down}"
    )
    return check_directory(tmp_path / "m", versions={"20260201000000"})


def where(report: CheckReport) -> set[tuple[str, int | None, str]]:
    return {(f.file, f.line, f.rule) for f in report.findings}


# One (unsafe, safe) pair per rule; the unsafe statement is always on line 2 of its file unless noted.
PAIRS: dict[str, tuple[str, str]] = {
    "require-concurrent-index-creation": (
        "CREATE INDEX users_email_idx ON users (email);",
        "CREATE TABLE tags (id int, name text);\nCREATE INDEX tags_name_idx ON tags (name);",
    ),
    "adding-field-with-default": (
        "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();",
    ),
    "adding-required-field": (
        "ALTER TABLE users ADD COLUMN plan text NOT NULL;",
        "ALTER TABLE users ADD COLUMN plan text NOT NULL DEFAULT 'free';",
    ),
    "adding-not-nullable-field": (
        "ALTER TABLE users ALTER COLUMN name SET NOT NULL;",
        "ALTER TABLE users VALIDATE CONSTRAINT users_name_nn;\nALTER TABLE users ALTER COLUMN name SET NOT NULL;",
    ),
    "adding-foreign-key-constraint": (
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id);",
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;",
    ),
    "constraint-missing-not-valid": (
        "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);",
        "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;",
    ),
    "constraint-validated-in-same-transaction": (
        "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;\n"
        "ALTER TABLE users VALIDATE CONSTRAINT users_age_check;",
        "ALTER TABLE users VALIDATE CONSTRAINT users_age_check;",
    ),
    "disallowed-unique-constraint": (
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
    ),
    "changing-column-type": (
        "ALTER TABLE users ALTER COLUMN age TYPE bigint;",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(200);",
    ),
    "renaming-column": (
        "ALTER TABLE users RENAME COLUMN name TO full_name;",
        "CREATE TABLE tags (id int, label text);\nALTER TABLE tags RENAME COLUMN label TO name;",
    ),
    "renaming-table": (
        "ALTER TABLE users RENAME TO members;",
        "CREATE TABLE tags (id int);\nALTER TABLE tags RENAME TO labels;",
    ),
    "ban-drop-column": (
        "ALTER TABLE users DROP COLUMN legacy;",
        "ALTER TABLE users ADD COLUMN legacy2 text;",
    ),
    "require-concurrent-index-deletion": (
        "DROP INDEX orders_total_idx;",
        "DROP INDEX CONCURRENTLY orders_total_idx;",
    ),
    "ban-drop-database": ("DROP DATABASE legacy;", "ANALYZE orders;"),
    "ban-drop-table": ("DROP TABLE orders;", "CREATE TABLE scratch (id int);\nDROP TABLE scratch;"),
    "ban-vacuum-full": ("VACUUM FULL users;", "VACUUM (ANALYZE) users;"),
    "ban-cluster": ("CLUSTER orders USING orders_pkey;", "ANALYZE orders;"),
    "ban-lock-table": (
        "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;",
        "LOCK TABLE orders IN ROW EXCLUSIVE MODE;",
    ),
    "enum-value-used-in-transaction": (
        "ALTER TYPE order_status ADD VALUE 'shipped';\nUPDATE orders SET status = 'shipped' WHERE id = 0;",
        "ALTER TYPE order_status ADD VALUE 'shipped';\nUPDATE orders SET status = 'paid' WHERE id = 0;",
    ),
    "require-concurrent-refresh": (
        "REFRESH MATERIALIZED VIEW order_totals;",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY order_totals;",
    ),
    "require-concurrent-reindex": ("REINDEX TABLE orders;", "REINDEX TABLE CONCURRENTLY orders;"),
    "require-concurrent-partition-detach": (
        "ALTER TABLE events DETACH PARTITION events_2025;",
        "ALTER TABLE events DETACH PARTITION events_2025 CONCURRENTLY;",
    ),
    "table-rewrite": ("ALTER TABLE orders SET UNLOGGED;", "ALTER TABLE orders SET (fillfactor = 90);"),
    "backfill-in-ddl-transaction": (
        "ALTER TABLE orders ADD COLUMN note text;\nUPDATE orders SET note = 'none';",
        "UPDATE orders SET total = 0 WHERE total IS NULL;",
    ),
}
# Statements that must run outside a transaction get 'transaction:false' in both forms.
NON_TRANSACTIONAL = {
    "ban-vacuum-full",
    "require-concurrent-reindex",
    "require-concurrent-partition-detach",
    "ban-drop-database",
    "require-concurrent-index-deletion",
}


@pytest.mark.parametrize("rule", sorted(PAIRS))
def test_rule_triggers_on_unsafe_form(tmp_path: Path, rule: str) -> None:
    unsafe, _ = PAIRS[rule]
    options = (
        "transaction:false"
        if rule in NON_TRANSACTIONAL and ("VACUUM" in unsafe or "DATABASE" in unsafe)
        else ""
    )
    report = lint_one(tmp_path, unsafe, options=options)
    line = 2 + unsafe.count("\n")  # the last statement of the up section is the unsafe one
    assert where(report) == {("20260201000000_change.sql", line, rule)}, report.findings
    finding = report.findings[0]
    assert finding.severity == "error" and finding.why == RULES[rule].why and finding.fix == RULES[rule].fix
    assert finding.message.startswith(f"Line {line} of '20260201000000_change.sql' ")


@pytest.mark.parametrize("rule", sorted(PAIRS))
def test_rule_is_quiet_on_safe_form(tmp_path: Path, rule: str) -> None:
    _, safe = PAIRS[rule]
    options = "transaction:false" if rule in NON_TRANSACTIONAL else ""
    report = lint_one(tmp_path, safe, options=options)
    assert report.findings == [], report.findings


def test_missing_down_only_when_up_creates_something(tmp_path: Path) -> None:
    write(tmp_path / "m", "20260101000000_base.sql", BASE)
    write(
        tmp_path / "m", "20260201000000_tags.sql", "-- migrate:up\nSELECT 1;\nCREATE TABLE tags (id int);\n"
    )
    write(tmp_path / "m", "20260202000000_data.sql", "-- migrate:up\nUPDATE users SET name = 'x';\n")
    write(tmp_path / "m", "20260203000000_empty_down.sql", "-- migrate:up\nCREATE INDEX CONCURRENTLY a ON tags (id);\n"
          "-- migrate:down\n-- nothing\n".replace("-- migrate:up", "-- migrate:up transaction:false"))  # fmt: skip
    report = check_directory(tmp_path / "m")
    assert where(report) == {
        ("20260201000000_tags.sql", 3, "missing-down"),
        ("20260203000000_empty_down.sql", 2, "missing-down"),
    }


def test_every_rule_is_covered_by_a_test_and_by_the_unsafe_scenario() -> None:
    assert set(PAIRS) | {"missing-down"} == set(RULES)
    report = check_directory(SCENARIOS / "lint_unsafe")
    assert {f.rule for f in report.findings} == set(RULES)


def test_unsafe_scenario_finds_each_form_at_its_line() -> None:
    report = check_directory(SCENARIOS / "lint_unsafe")
    found = {(f.file.split("_", 1)[0], f.line, f.rule) for f in report.findings}
    expected = {
        ("20260102000000", 2, "require-concurrent-index-creation"),
        ("20260103000000", 2, "adding-field-with-default"),
        ("20260104000000", 2, "adding-required-field"),
        ("20260105000000", 2, "adding-not-nullable-field"),
        ("20260106000000", 2, "adding-foreign-key-constraint"),
        ("20260107000000", 2, "constraint-missing-not-valid"),
        ("20260108000000", 2, "disallowed-unique-constraint"),
        ("20260109000000", 2, "changing-column-type"),
        ("20260110000000", 2, "renaming-column"),
        ("20260111000000", 2, "renaming-table"),
        ("20260112000000", 2, "ban-drop-column"),
        ("20260113000000", 2, "ban-drop-table"),
        ("20260114000000", 2, "ban-vacuum-full"),
        ("20260115000000", 2, "ban-cluster"),
        ("20260116000000", 2, "ban-lock-table"),
        ("20260117000000", 3, "enum-value-used-in-transaction"),
        ("20260118000000", 2, "require-concurrent-refresh"),
        ("20260119000000", 2, "require-concurrent-reindex"),
        ("20260120000000", 2, "require-concurrent-partition-detach"),
        ("20260121000000", 2, "table-rewrite"),
        ("20260122000000", 3, "backfill-in-ddl-transaction"),
        ("20260123000000", 3, "constraint-validated-in-same-transaction"),
        ("20260124000000", 2, "missing-down"),
        ("20260125000000", 2, "require-concurrent-index-deletion"),
        ("20260126000000", 2, "ban-drop-database"),
    }
    assert found == expected
    assert not report.ok and report.files == 26


def test_safe_scenario_passes_with_its_suppressions() -> None:
    report = check_directory(SCENARIOS / "lint_safe")
    assert report.findings == [] and report.ok
    assert {(f.file.split("_", 1)[0], f.rule) for f in report.suppressed} == {
        ("20260118000000", "ban-drop-column"),
        ("20260118000000", "renaming-column"),
        ("20260119000000", "missing-down"),
    }


def test_inline_references_on_a_new_column_is_fine_but_inline_check_is_not(tmp_path: Path) -> None:
    # PostgreSQL skips the validating scan of a foreign key on a column added by the same statement (all NULL).
    fk = lint_one(tmp_path / "a", "ALTER TABLE orders ADD COLUMN owner_id bigint REFERENCES users (id);")
    assert fk.findings == []
    check = lint_one(tmp_path / "b", "ALTER TABLE orders ADD COLUMN qty int CHECK (qty > 0);")
    assert [f.rule for f in check.findings] == ["constraint-missing-not-valid"]


def test_index_created_in_the_same_migration_may_be_dropped(tmp_path: Path) -> None:
    report = lint_one(
        tmp_path, "CREATE TABLE tags (id int);\nCREATE INDEX tags_id ON tags (id);\nDROP INDEX tags_id;"
    )
    assert report.findings == []


def test_column_types_are_learned_from_earlier_migrations(tmp_path: Path) -> None:
    shrink = lint_one(tmp_path / "a", "ALTER TABLE users ALTER COLUMN email TYPE varchar(50);")
    assert [f.rule for f in shrink.findings] == ["changing-column-type"]
    to_text = lint_one(tmp_path / "b", "ALTER TABLE users ALTER COLUMN email TYPE text;")
    using = lint_one(tmp_path / "c", "ALTER TABLE users ALTER COLUMN email TYPE text USING lower(email);")
    assert to_text.findings == [] and [f.rule for f in using.findings] == ["changing-column-type"]


def test_not_valid_check_validated_earlier_makes_set_not_null_safe(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    write(directory, "20260101000000_base.sql", BASE)
    write(directory, "20260102000000_check.sql", "-- migrate:up\nALTER TABLE users ADD CONSTRAINT nn "
          "CHECK (name IS NOT NULL) NOT VALID;\n-- migrate:down\nALTER TABLE users DROP CONSTRAINT nn;\n")  # fmt: skip
    write(directory, "20260103000000_set.sql", "-- migrate:up\nALTER TABLE users ALTER COLUMN name SET NOT NULL;\n"
          "-- migrate:down\nSELECT 1;\n")  # fmt: skip
    assert [f.rule for f in check_directory(directory).findings] == ["adding-not-nullable-field"]
    write(
        directory, "20260102500000_validate.sql", "-- migrate:up\nALTER TABLE users VALIDATE CONSTRAINT nn;\n"
    )
    assert check_directory(directory).findings == []


# --- suppression ---------------------------------------------------------------------------------------------


def test_allow_comment_above_or_on_the_line_silences_one_statement(tmp_path: Path) -> None:
    up = (
        "-- pgmig:allow ban-drop-column because nothing reads it since v2\n"
        "ALTER TABLE users DROP COLUMN legacy;\n"
        "ALTER TABLE users DROP COLUMN name; -- pgmig:allow ban-drop-column, renaming-column because unused\n"
        "ALTER TABLE users DROP COLUMN age;"
    )
    report = lint_one(tmp_path, up)
    assert where(report) == {("20260201000000_change.sql", 5, "ban-drop-column")}
    assert sorted(f.line or 0 for f in report.suppressed) == [3, 4]


@pytest.mark.parametrize(
    ("comment", "problem"),
    [
        ("-- pgmig:allow ban-drop-column", "gives no reason"),
        (
            "-- pgmig:allow ban-drop-colum because typo",
            "unknown rule 'ban-drop-colum' (did you mean 'ban-drop-column'?)",
        ),
        ("-- pgmig:allow because no rule", "names an unknown rule 'because'"),
    ],
)
def test_malformed_allow_comment_is_an_error_and_silences_nothing(
    tmp_path: Path, comment: str, problem: str
) -> None:
    report = lint_one(tmp_path, f"{comment}\nALTER TABLE users DROP COLUMN legacy;")
    rules = sorted(f.rule for f in report.findings)
    assert rules == ["ban-drop-column", "suppression"]
    message = next(f.message for f in report.findings if f.rule == "suppression")
    assert problem in message and "'-- pgmig:allow <rule-id> because <reason>'" in message


# --- structure, syntax, transactions ---------------------------------------------------------------------------


def test_syntax_error_with_line_column_and_offending_text(tmp_path: Path) -> None:
    up = "CREATE TABLE tags (id int);\n\nCREATE TABLE labels (\n    id int,\n    name txt tex\n);"
    report = lint_one(tmp_path, up)
    (finding,) = report.findings
    assert (finding.rule, finding.line, finding.column) == ("syntax", 6, 14)
    assert 'syntax error at or near "tex"' in finding.message and "at 'tex'" in finding.message
    assert finding.location == "20260201000000_change.sql:6:14"


def test_every_syntax_error_is_reported_in_both_sections(tmp_path: Path) -> None:
    write(tmp_path / "m", "20260101000000_a.sql", "-- migrate:up\nSELEC 1;\nSELECT 2;\nCRATE TABLE x ();\n"
          "-- migrate:down\nDROP TABEL x;\n")  # fmt: skip
    report = check_directory(tmp_path / "m")
    assert [(f.rule, f.line, f.column) for f in report.findings] == [
        ("syntax", 2, 1), ("syntax", 4, 1), ("syntax", 6, 6),
    ]  # fmt: skip


def test_concurrently_in_a_transactional_file() -> None:
    report = check_directory(SCENARIOS / "concurrently_in_tx")
    (finding,) = report.findings
    assert (finding.file, finding.line, finding.rule) == ("20260302000000_index_items.sql", 3, "transaction")
    assert "CREATE INDEX CONCURRENTLY" in finding.message and "transaction:false" in finding.message


def test_transaction_control_in_a_migration(tmp_path: Path) -> None:
    report = lint_one(tmp_path, "BEGIN;\nCREATE TABLE tags (id int);\nCOMMIT;")
    assert [(f.line, f.rule) for f in report.findings] == [(2, "transaction"), (4, "transaction")]
    assert "Remove it" in report.findings[0].message


def test_file_names_sections_and_options(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    write(directory, "2026_bad.sql", "-- migrate:up\nSELECT 1;\n")
    write(directory, "20260101000000_a.sql", "-- migrate:up\nSELECT 1;\n")
    write(directory, "20260101000000_b.sql", "-- migrate:up\nSELECT 1;\n")
    write(directory, "20260102000000_c.sql", "-- migrate:up lock_timout:5s\nSELECT 1;\n")
    write(directory, "20260103000000_d.sql", "SELECT 1;\n")
    write(directory, "README.md", "not a migration")
    report = check_directory(directory)
    found = {(f.file, f.line, f.rule) for f in report.findings}
    assert found == {
        ("2026_bad.sql", None, "file"),
        ("20260101000000_b.sql", None, "file"),
        ("20260102000000_c.sql", 1, "file"),
        ("20260103000000_d.sql", None, "file"),
    }
    option = next(f for f in report.findings if f.file == "20260102000000_c.sql")
    assert "Did you mean 'lock_timeout'?" in option.message


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationFileError, match="does not exist"):
        check_directory(tmp_path / "nowhere")


def test_bad_backfill_directive_is_reported(tmp_path: Path) -> None:
    report = lint_one(tmp_path, "-- pgmig:backfill batch_size:10\nUPDATE users SET name = 'x';")
    assert [f.rule for f in report.findings] == ["backfill"]
    assert "transaction:false" in report.findings[0].message


# --- modes and filters ---------------------------------------------------------------------------------------


def test_lint_modes(tmp_path: Path) -> None:
    write(tmp_path / "m", "20260101000000_base.sql", BASE)
    write(tmp_path / "m", "20260201000000_x.sql", "-- migrate:up\nALTER TABLE users DROP COLUMN legacy;\nSELEC;\n"
          "-- migrate:down\nSELECT 1;\n")  # fmt: skip
    error = check_directory(tmp_path / "m", lint="error")
    assert [f.rule for f in error.findings] == ["syntax"]  # lint waits until the file parses
    write(tmp_path / "m", "20260201000000_x.sql", "-- migrate:up\nALTER TABLE users DROP COLUMN legacy;\n"
          "-- migrate:down\nSELECT 1;\n")  # fmt: skip
    warn = check_directory(tmp_path / "m", lint="warn")
    assert [(f.rule, f.severity) for f in warn.findings] == [("ban-drop-column", "warning")] and warn.ok
    assert check_directory(tmp_path / "m", lint="off").findings == []


def test_versions_filter_reports_only_those_but_learns_from_all(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    write(directory, "20260101000000_base.sql", BASE)
    write(directory, "20260102000000_drop.sql", "-- migrate:up\nALTER TABLE users DROP COLUMN legacy;\n")
    write(directory, "20260103000000_index.sql", "-- migrate:up\nCREATE INDEX i ON users (email);\n-- migrate:down\n"
          "DROP INDEX i;\n")  # fmt: skip
    report = check_directory(directory, versions={"20260103000000"})
    assert where(report) == {("20260103000000_index.sql", 2, "require-concurrent-index-creation")}
    assert report.files == 3


def test_existing_scenarios_have_no_false_alarms() -> None:
    for name in ("basic", "dollar_bodies", "sql_error_third", "tenants"):
        assert check_directory(SCENARIOS / name).findings == [], name


def test_finding_location() -> None:
    assert Finding("x", "error", "f.sql", 3, 7, "m").location == "f.sql:3:7"
    assert Finding("x", "error", "f.sql", None, None, "m").location == "f.sql"


def test_safe_forms_with_allow_comments_really_migrate(database_url: str, tmp_path: Path) -> None:
    # '-- pgmig:allow' lines are the linter's: the engine must run the migrations that carry them
    from helpers import copy_scenario, query

    from flask_pgmig.core.migrator import Migrator

    migrations = copy_scenario("lint_safe", tmp_path)
    if int(query(database_url, "SHOW server_version_num")[0][0]) < 140000:  # DETACH ... CONCURRENTLY is 14+
        online = migrations / "20260117000000_maintenance_online.sql"
        online.write_text(
            online.read_text().replace("ALTER TABLE events DETACH PARTITION events_2025 CONCURRENTLY;\n", "")
        )
    migrator = Migrator.create(database_url, migrations)
    steps = migrator.migrate().steps
    assert len(steps) == len([p for p in (SCENARIOS / "lint_safe").iterdir() if p.suffix in (".sql", ".py")])
    assert migrator.status().clean


def test_misspelled_pgmig_directive_is_an_error(tmp_path: Path) -> None:
    report = lint_one(tmp_path, "-- pgmig:backfil batch_size:10\nUPDATE users SET name = 'x';")
    assert any("unknown directive '-- pgmig:backfil'" in f.message for f in report.findings), report.findings
