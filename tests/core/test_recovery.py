"""Recovering from failures on a real PostgreSQL: failed transaction:false runs, repair, resume, checksums,
out-of-order and missing files, --atomic, privileges and read-only databases (issue: safe and recoverable)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest
from helpers import copy_scenario, history_versions, query, tables
from psycopg import sql

from flask_pgmig.core.migrator import Migrator
from flask_pgmig.errors import (
    ChecksumMismatch,
    ConfigError,
    FailedMigration,
    HistoryError,
    MigrationFailed,
    OutOfOrder,
    PermissionDenied,
)


def make(url: str, directory: Path, **options: object) -> Migrator:
    return Migrator.create(url, directory, **options)


def indexes(url: str) -> dict[str, bool]:
    """Index name -> valid, for the public schema."""
    rows = query(
        url,
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    return {name: valid for name, valid in rows}


def fail_third_statement(database_url: str, tmp_path: Path) -> tuple[Migrator, Path]:
    migrations = copy_scenario("nontx_fails", tmp_path)
    migrator = make(database_url, migrations)
    with pytest.raises(MigrationFailed) as caught:
        migrator.migrate()
    assert "line 4" in str(caught.value) and "no_such_function" in str(caught.value)
    assert "Statements before this one were committed (transaction:false)" in str(caught.value)
    return migrator, migrations


def test_failed_non_transactional_migration_is_recorded_and_blocks_migrate(
    database_url: str, tmp_path: Path
) -> None:
    migrator, _ = fail_third_statement(database_url, tmp_path)
    row = query(
        database_url,
        "SELECT status, statements_done, statements_total, error FROM pgmig_history "
        "WHERE version = '20260502000000'",
    )
    assert row[0][:3] == ("failed", 2, 4) and "no_such_function" in row[0][3]
    assert set(indexes(database_url)) >= {"orders_customer_idx", "orders_total_idx"}
    state = migrator.status().migrations[-1]
    assert state.state == "failed" and state.record is not None and state.record.statements_done == 2
    with pytest.raises(FailedMigration) as caught:
        migrator.migrate()
    message = str(caught.value)
    assert "migrate --resume" in message and "repair --mark-applied 20260502000000" in message


def test_resume_continues_after_the_completed_prefix(database_url: str, tmp_path: Path) -> None:
    migrator, migrations = fail_third_statement(database_url, tmp_path)
    path = migrations / "20260502000000_index_orders.sql"
    path.write_text(path.read_text().replace("DEFAULT no_such_function()", "DEFAULT 'none'"))
    result = migrator.migrate(resume=True)
    assert [s.version for s in result.steps] == ["20260502000000"]
    assert migrator.status().clean
    assert set(indexes(database_url)) >= {"orders_customer_idx", "orders_total_idx", "orders_note_idx"}
    stored = query(database_url, "SELECT up_sql FROM pgmig_history WHERE version = '20260502000000'")[0][0]
    assert "DEFAULT 'none'" in stored  # the history keeps what finally ran


def test_resume_refuses_when_the_completed_prefix_changed(database_url: str, tmp_path: Path) -> None:
    migrator, migrations = fail_third_statement(database_url, tmp_path)
    path = migrations / "20260502000000_index_orders.sql"
    path.write_text(path.read_text().replace("orders (total)", "orders (total, id)"))
    with pytest.raises(FailedMigration, match="2 statements that already ran have changed"):
        migrator.migrate(resume=True)
    assert query(database_url, "SELECT status FROM pgmig_history WHERE version = '20260502000000'") == [
        ("failed",)
    ]


def test_repair_mark_applied_and_mark_rolled_back_write_the_audit_log(
    database_url: str, tmp_path: Path
) -> None:
    migrator, _ = fail_third_statement(database_url, tmp_path)
    with pytest.raises(HistoryError, match="is for a migration that is applied with a changed file, but"):
        migrator.repair("accept-checksum", "20260502000000")
    with pytest.raises(
        HistoryError, match=r"is for a migration that is failed or interrupted, but .* is applied"
    ):
        migrator.repair("mark-applied", "20260501000000")
    result = migrator.repair("mark-rolled-back", "20260502000000")
    assert (result.previous_state, result.statements_done) == ("failed", 2)
    assert [m.state for m in migrator.status().migrations] == ["applied", "pending"]
    audit = query(database_url, "SELECT action, outcome, versions FROM pgmig_history_audit ORDER BY id")
    assert audit[-1] == ("repair", "ok", ["20260502000000"])
    with pytest.raises(MigrationFailed):
        migrator.migrate()  # the file still fails at its third statement: the row is failed again
    migrator.repair("mark-applied", "20260502000000")
    assert migrator.status().clean
    entries = migrator.audit_log()
    assert [e.action for e in entries[:2]] == ["repair", "migrate"]
    assert entries[0].detail["action"] == "mark-applied"


def test_accept_checksum_tells_cosmetic_edits_apart(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    migrator = make(database_url, migrations)
    migrator.migrate()
    first = migrations / "20260115093000_create_users.sql"
    first.write_text(first.read_text().replace("CREATE TABLE", "-- the users\nCREATE   TABLE"))
    second = migrations / "20260116080000_add_users_name.sql"
    second.write_text(second.read_text().replace("name text", "name varchar(100)"))
    states = {m.version: (m.state, m.change) for m in migrator.status().migrations}
    assert states["20260115093000"] == ("modified", "cosmetic")
    assert states["20260116080000"] == ("modified", "sql")
    with pytest.raises(ChecksumMismatch, match="the change is cosmetic"):
        migrator.migrate()
    assert migrator.repair("accept-checksum", "20260115093000").change == "cosmetic"
    assert migrator.repair("accept-checksum", "20260116080000").change == "sql"
    assert migrator.status().clean
    assert not migrator.repair("accept-checksum", "20260116080000").changed


def test_out_of_order_is_refused_unless_allowed(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    migrator = make(database_url, migrations)
    migrator.migrate()
    (migrations / "20260116000000_branch_table.sql").write_text(
        "-- migrate:up\nCREATE TABLE branch_table (id int);\n-- migrate:down\nDROP TABLE branch_table;\n"
    )
    with pytest.raises(OutOfOrder) as caught:
        migrator.migrate()
    assert "20260116000000" in str(caught.value) and "20260117120000" in str(caught.value)
    assert "branch_table" not in tables(database_url)
    assert [s.version for s in migrator.migrate(allow_out_of_order=True).steps] == ["20260116000000"]
    assert "branch_table" in tables(database_url)
    configured = make(database_url, migrations, out_of_order=True)
    (migrations / "20260115100000_second_branch.sql").write_text("-- migrate:up\nSELECT 1;\n")
    assert [s.version for s in configured.migrate().steps] == ["20260115100000"]


def test_branch_switch_rollback_uses_the_stored_down_and_says_so(database_url: str, tmp_path: Path) -> None:
    migrations = copy_scenario("basic", tmp_path)
    notices: list[str] = []

    from flask_pgmig.core.events import Events

    class Recorder(Events):
        def notice(self, message: str) -> None:
            notices.append(message)

    migrator = Migrator.create(database_url, migrations, events=Recorder())
    migrator.migrate()
    for name in ("20260116080000_add_users_name.sql", "20260117120000_index_users_email.sql"):
        (migrations / name).unlink()
    assert [m.state for m in migrator.status().migrations] == ["applied", "missing", "missing"]
    assert not migrator.status().clean
    migrator.rollback(steps=2)
    assert history_versions(database_url) == ["20260115093000"]
    columns = {r[0] for r in query(database_url, "SELECT column_name FROM information_schema.columns "
                                   "WHERE table_name = 'users'")}  # fmt: skip
    assert columns == {"id", "email"}
    assert any("down section stored at apply time" in n for n in notices), notices


def test_atomic_applies_all_or_nothing_and_refuses_non_transactional(
    database_url: str, tmp_path: Path
) -> None:
    migrations = copy_scenario("sql_error_third", tmp_path)
    migrator = make(database_url, migrations)
    with pytest.raises(MigrationFailed):
        migrator.migrate(atomic=True)
    assert history_versions(database_url) == []
    assert not tables(database_url) & {"step_1", "step_2"}
    audit = query(database_url, "SELECT outcome FROM pgmig_history_audit")
    assert audit == [("failed",)]

    mixed = copy_scenario("live_table", tmp_path / "mixed")
    with pytest.raises(ConfigError, match="transaction:false"):
        make(database_url, mixed).migrate(atomic=True)
    assert "accounts" not in tables(database_url)
    result = make(database_url, mixed).migrate(atomic=True, to="20260602000000")
    assert [s.version for s in result.steps] == ["20260601000000", "20260602000000"]


def test_missing_privilege_names_the_role_and_the_fix(database_url: str, tmp_path: Path) -> None:
    role = "pgmig_test_weak_" + tmp_path.name[-8:].replace("-", "_").lower()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        migrations = copy_scenario("basic", tmp_path)
        owner = make(database_url, migrations)
        owner.migrate(to="20260115093000")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON pgmig_history, pgmig_history_audit TO {}")
                         .format(sql.Identifier(role)))  # fmt: skip
        weak_url = psycopg.conninfo.make_conninfo(database_url, user=role)
        with pytest.raises(MigrationFailed) as caught:
            make(weak_url, migrations).migrate()
        message = str(caught.value)
        assert f"role '{role}' lacks the privilege on table 'users'" in message
        assert "PGMIG_DATABASE_URL" in message and "PGMIG_ROLE" in message
        assert caught.value.sqlstate == "42501"

        fresh = tmp_path / "fresh"
        fresh.mkdir()
        (fresh / "20260101000000_t.sql").write_text("-- migrate:up\nSELECT 1;\n")
        other_schema = make(weak_url, fresh, schema="pgmig_ops_" + role[-8:])
        with pytest.raises(PermissionDenied) as denied:
            other_schema.migrate()  # creating the history schema needs CREATE on the database
        assert role in str(denied.value) and "PGMIG_ROLE" in str(denied.value)

        with pytest.raises(MigrationFailed) as as_set_role:
            make(database_url, migrations, role=role).migrate()  # PGMIG_ROLE itself lacks the privilege
        assert f"grant '{role}' (the PGMIG_ROLE migrations SET ROLE to) what it lacks" in str(
            as_set_role.value
        )
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_read_only_database_is_refused_before_anything_runs(database_url: str, tmp_path: Path) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                sql.Identifier(str(dbname))
            )
        )
    migrator = make(database_url, copy_scenario("basic", tmp_path))
    with pytest.raises(ConfigError, match="read-only"):
        migrator.migrate()
    assert tables(database_url) == set()


def test_statement_timeout_per_file_and_global(database_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20260101000000_slow.sql").write_text(
        "-- migrate:up statement_timeout:200ms\nSELECT pg_sleep(2);\n"
    )
    with pytest.raises(MigrationFailed) as caught:
        make(database_url, directory).migrate()
    assert caught.value.sqlstate == "57014" and "statement_timeout" in str(caught.value)
    (directory / "20260101000000_slow.sql").write_text("-- migrate:up\nSELECT pg_sleep(0.3);\n")
    with pytest.raises(MigrationFailed, match="PGMIG_STATEMENT_TIMEOUT"):
        make(database_url, directory, statement_timeout_ms=100).migrate()
    assert make(database_url, directory).migrate().steps  # unset by default: no limit


def test_deadlock_victim_gets_a_clear_message_and_nothing_stays(database_url: str, tmp_path: Path) -> None:
    query(database_url, "CREATE TABLE ledger_a (id int PRIMARY KEY, n int); INSERT INTO ledger_a VALUES (1, 0);"
          "CREATE TABLE ledger_b (id int PRIMARY KEY, n int); INSERT INTO ledger_b VALUES (1, 0)")  # fmt: skip
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20260901000000_touch_ledgers.sql").write_text(
        "-- migrate:up\nUPDATE ledger_a SET n = n + 1 WHERE id = 1;\nUPDATE ledger_b SET n = n + 1 WHERE id = 1;\n"
    )
    # PostgreSQL looks for a deadlock once per wait, deadlock_timeout after the wait began, and the session that
    # finds it is the victim. The other session never looks (and gives up after 30 s rather than hang the suite);
    # the migration looks 3 s into its wait, by when the cycle is closed even on a loaded CI machine.
    other = psycopg.connect(database_url, autocommit=False)
    other.execute("SET deadlock_timeout = '1h'")
    other.execute("SET statement_timeout = '30s'")
    other.execute("UPDATE ledger_b SET n = n + 10 WHERE id = 1")
    watcher = psycopg.connect(database_url, autocommit=True)

    def close_the_cycle() -> None:
        # once the migration waits for ledger_b, take ledger_a
        for _ in range(800):
            waiting = watcher.execute("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'pgmig%' "
                                      "AND wait_event_type = 'Lock'").fetchall()  # fmt: skip
            if waiting:
                break
            time.sleep(0.025)
        other.execute("UPDATE ledger_a SET n = n + 10 WHERE id = 1")

    closer = threading.Thread(target=close_the_cycle)
    closer.start()
    migration_url = (
        database_url + ("&" if "?" in database_url else "?") + "options=-c%20deadlock_timeout%3D3s"
    )
    try:
        with pytest.raises(MigrationFailed) as caught:
            make(migration_url, directory, lock_timeout_ms=None).migrate()
    finally:
        closer.join()
        other.rollback()
        other.close()
        watcher.close()
    assert caught.value.sqlstate == "40P01"
    assert "victim of a deadlock" in str(caught.value) and "run migrate again" in str(caught.value)
    assert query(database_url, "SELECT a.n, b.n FROM ledger_a a, ledger_b b") == [(0, 0)]
    assert history_versions(database_url) == []


def test_atomic_gives_each_file_its_own_timeouts(database_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "m"
    directory.mkdir()
    (directory / "20261001000000_quick.sql").write_text("-- migrate:up statement_timeout:100ms\nSELECT 1;\n")
    (directory / "20261002000000_slow.sql").write_text("-- migrate:up\nSELECT pg_sleep(0.3);\n")
    # the second file has no limit: the first file's 100 ms must not carry over inside the one transaction
    result = make(database_url, directory).migrate(atomic=True)
    assert [s.version for s in result.steps] == ["20261001000000", "20261002000000"]
    (directory / "20261003000000_capped.sql").write_text(
        "-- migrate:up statement_timeout:100ms\nSELECT pg_sleep(1);\n"
    )
    with pytest.raises(MigrationFailed) as caught:
        make(database_url, directory).migrate(atomic=True)
    assert caught.value.sqlstate == "57014"
